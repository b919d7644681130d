"""rawmamba: unified sRGB-to-RAW de-rendering."""
__version__ = "0.1.0"
