"""rawmamba.ssm"""
