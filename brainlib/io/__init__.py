"""brainlib.io"""
