from pathlib import Path

import pytest
import torch

from prunetui.core.profile import check_layers, load_profile
from prunetui.core.pruning import prune
from prunetui.core.size import dense_size_mib, percent_of_dense, projected_size_mib, sparse_size_mib
from prunetui.sources.vgg import VGG

PROFILES = Path(__file__).parents[2] / "profiles"

# The blog's five runs, shipped as profiles, and the size and % of dense the blog reports for each.
BLOG_RUNS = {
    "run1": ("15.85", "45.03"),
    "run2": ("9.55", "27.14"),
    "run3": ("10.34", "29.37"),
    "run4": ("3.84", "10.90"),
    "run5": ("3.08", "8.75"),
}


def trained_like_vgg() -> torch.nn.Module:
    """The lab VGG with every parameter nonzero, as in a trained checkpoint (BN bias is 0 at init)."""
    torch.manual_seed(0)
    model = VGG()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
    return model


def test_lab_vgg_dense_size():
    assert f"{dense_size_mib(trained_like_vgg()):.2f}" == "35.20"


@pytest.mark.parametrize("run", list(BLOG_RUNS))
def test_blog_runs_sizes(run):
    size, percent = BLOG_RUNS[run]
    model = trained_like_vgg()
    dense = dense_size_mib(model)
    profile = load_profile(PROFILES / f"vgg-cifar-{run}.toml")
    check_layers(profile, [name for name, p in model.named_parameters() if p.dim() > 1])
    targets = profile.sparsity
    projected = projected_size_mib(dict(model.named_parameters()), targets)
    prune(model, targets)
    sparse = sparse_size_mib(model)
    assert f"{sparse:.2f}" == size
    assert f"{percent_of_dense(sparse, dense):.2f}" == percent
    assert projected == sparse  # the projection is exact, not an estimate


def test_buffers_do_not_count_and_zeros_do_not_count():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    params = sum(p.numel() for p in model.parameters())  # 16 + 4 + 4 + 4, running stats excluded
    assert dense_size_mib(model) == params * 32 / 2**23
    with torch.no_grad():
        model[1].bias.fill_(0.1)  # BN bias starts at 0, which would not count
        model[0].weight[0].zero_()
    assert sparse_size_mib(model) == (params - 4) * 32 / 2**23
    assert dense_size_mib(model) == params * 32 / 2**23


def test_projection_leaves_weights_untouched(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    projected_size_mib(dict(model.named_parameters()), {"3.weight": 0.9})
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
