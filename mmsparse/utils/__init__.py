"""mmsparse.utils (plain PyTorch, no OpenMMLab imports)."""
