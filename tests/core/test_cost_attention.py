"""MACs of attention models: torchprofile read nn.MultiheadAttention's fused inference kernel (taken under
no_grad in eval mode) as a value without a dtype and failed on torchvision's ViT, so every ViT prune
said "Cost not measured"; the plain path is counted instead (core.cost.count_macs)."""

import torch
from torchprofile import profile_macs
from torchvision.models.vision_transformer import VisionTransformer

from prunetui.core.cost import count_macs

X = torch.zeros(1, 3, 32, 32)


def tiny_vit() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(
        image_size=32, patch_size=16, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=10
    ).eval()


def test_vit_macs_are_counted_on_the_plain_attention_path():
    model = tiny_vit()
    # matrix products alone: patch conv 16*4*768, qkv 5*16*48, scores and values 2 * 2*5*5*8,
    # out projection 5*16*16, MLP 2 * 5*16*32, head 16*10
    products = 49152 + 3840 + 800 + 1280 + 5120 + 160
    macs = count_macs(model, X)
    assert macs == profile_macs(model, X) and macs >= products  # with grad: the plain path, traced
    assert torch.backends.mha.get_fastpath_enabled()  # put back
