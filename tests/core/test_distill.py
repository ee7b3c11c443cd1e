import pytest
import torch
from conftest import finetune_recipe
from torch.nn import functional as F

from prunetui.core.distill import distillation_loss
from prunetui.core.model_state import ModelState
from prunetui.core.recipe import RecipeError


def test_alpha_zero_is_cross_entropy_and_a_perfect_student_has_no_soft_loss():
    torch.manual_seed(0)
    student, teacher, labels = torch.randn(8, 5), torch.randn(8, 5), torch.randint(0, 5, (8,))
    hard_only = distillation_loss(student, teacher, labels, 4.0, alpha=0.0)
    torch.testing.assert_close(hard_only, F.cross_entropy(student, labels))
    soft_only = distillation_loss(teacher, teacher, labels, 4.0, alpha=1.0)
    assert float(soft_only) == pytest.approx(0.0, abs=1e-6)


def test_soft_term_is_t_squared_kl():
    torch.manual_seed(1)
    student, teacher, labels = torch.randn(4, 3), torch.randn(4, 3), torch.zeros(4, dtype=torch.long)
    t = 2.0
    expected = (
        (F.softmax(teacher / t, 1) * (F.log_softmax(teacher / t, 1) - F.log_softmax(student / t, 1)))
        .sum(1)
        .mean()
    )
    got = distillation_loss(student, teacher, labels, t, alpha=1.0)
    torch.testing.assert_close(got, expected * t * t)


def test_the_teacher_is_a_frozen_copy_of_the_model_as_opened(model):
    state = ModelState(model)
    with torch.no_grad():
        model[0].weight.zero_()  # the model in hand changes; the teacher is the model as opened
    teacher = state.teacher()
    images = torch.rand(2, 1, 8, 8)
    assert not torch.equal(teacher(images), model(images))
    assert torch.equal(teacher[0].weight, state.opened["0.weight"])
    assert all(not p.requires_grad for p in teacher.parameters())


@pytest.mark.parametrize("bad", [{"temperature": 0.0}, {"alpha": 1.5}])
def test_bad_settings_are_refused_by_the_recipe(bad):
    with pytest.raises(RecipeError):
        finetune_recipe(distill=True, **bad).check()
