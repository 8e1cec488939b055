"""mmsparse.p3b (plain PyTorch, no OpenMMLab imports)."""
