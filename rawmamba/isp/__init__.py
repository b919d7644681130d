"""rawmamba.isp"""
