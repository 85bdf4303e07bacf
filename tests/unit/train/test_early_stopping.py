"""Early stopping stops after `patience` worse validations and leaves the best weights in the model."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from tunesmith.train.callbacks import EarlyStoppingCallback


def validate(cb, model, step, loss, value):
    with torch.no_grad():
        model.weight.fill_(value)
    state = SimpleNamespace(global_step=step, is_world_process_zero=True)
    control = SimpleNamespace(should_training_stop=False)
    cb.on_evaluate(None, state, control, metrics={"eval_loss": loss}, model=model)
    return state, control


def test_stops_after_patience_and_restores_the_best_weights():
    model = torch.nn.Linear(2, 2, bias=False)
    cb = EarlyStoppingCallback(patience=2)
    validate(cb, model, 10, 1.0, 1.0)
    validate(cb, model, 20, 0.5, 2.0)  # best
    _, control = validate(cb, model, 30, 0.7, 3.0)
    assert not control.should_training_stop
    state, control = validate(cb, model, 40, 0.6, 4.0)
    assert control.should_training_stop and cb.best_step == 20
    cb.on_train_end(None, state, control, model=model)
    assert torch.all(model.weight == 2.0)


def test_the_last_validation_being_best_keeps_the_final_weights():
    model = torch.nn.Linear(2, 2, bias=False)
    cb = EarlyStoppingCallback(patience=2)
    validate(cb, model, 10, 1.0, 1.0)
    state, control = validate(cb, model, 20, 0.5, 2.0)
    with torch.no_grad():
        model.weight.fill_(5.0)  # (no later validation: nothing to compare against, nothing restored)
    cb.on_train_end(None, state, control, model=model)
    assert torch.all(model.weight == 5.0)
