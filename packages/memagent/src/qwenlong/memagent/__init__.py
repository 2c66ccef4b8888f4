"""qwenlong.memagent"""
