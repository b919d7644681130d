"""rawmamba.data"""
