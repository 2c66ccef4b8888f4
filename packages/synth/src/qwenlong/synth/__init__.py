"""qwenlong.synth"""
