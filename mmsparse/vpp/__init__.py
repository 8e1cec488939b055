"""mmsparse.vpp (plain PyTorch, no OpenMMLab imports)."""
