"""rawmamba.metadata"""
