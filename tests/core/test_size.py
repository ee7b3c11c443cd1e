import pytest
import torch

from prunetui.core.pruning import prune
from prunetui.core.size import dense_size_mib, percent_of_dense, projected_size_mib, sparse_size_mib
from prunetui.sources.vgg import VGG

LAYERS = [f"backbone.conv{i}.weight" for i in range(8)] + ["classifier.weight"]

# The blog's five runs: per-layer sparsities, then the size and % of dense it reports.
BLOG_RUNS = {
    "run1": ([0, 0, 0, 0, 0.30, 0.60, 0.60, 0.80, 0], "15.85", "45.03"),
    "run2": ([0, 0, 0.70, 0.65, 0.60, 0.65, 0.75, 0.90, 0], "9.55", "27.14"),
    "run3": ([0, 0, 0, 0.65, 0.60, 0.65, 0.75, 0.90, 0], "10.34", "29.37"),
    "run4": ([0, 0, 0, 0.80, 0.91, 0.93, 0.95, 0.95, 0], "3.84", "10.90"),
    "run5": ([0, 0.50, 0.55, 0.80, 0.91, 0.93, 0.95, 0.95, 0], "3.08", "8.75"),
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
    sparsities, size, percent = BLOG_RUNS[run]
    model = trained_like_vgg()
    dense = dense_size_mib(model)
    targets = dict(zip(LAYERS, sparsities, strict=True))
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
