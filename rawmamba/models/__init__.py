"""rawmamba.models"""
