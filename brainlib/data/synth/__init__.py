"""brainlib.data.synth"""
