"""mmsparse.art (plain PyTorch, no OpenMMLab imports)."""
