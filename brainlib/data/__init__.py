"""brainlib.data"""
