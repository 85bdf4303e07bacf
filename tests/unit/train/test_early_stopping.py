"""Early stopping stops after `patience` worse validations and leaves the best validated weights in the model;
the final metrics are then that validation's."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from tunesmith.train.callbacks import EarlyStoppingCallback, MetricsCallback, final_metrics


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


def test_steps_trained_after_the_best_validation_are_not_kept():
    model = torch.nn.Linear(2, 2, bias=False)
    cb = EarlyStoppingCallback(patience=2)
    validate(cb, model, 10, 1.0, 1.0)
    _, control = validate(cb, model, 20, 0.5, 2.0)  # best, and the last validation
    with torch.no_grad():
        model.weight.fill_(5.0)  # steps 21-25 train on, never validated
    cb.on_train_end(None, SimpleNamespace(global_step=25, is_world_process_zero=True), control, model=model)
    assert torch.all(model.weight == 2.0) and cb.restored_step == 20


def test_ending_on_the_best_validation_keeps_the_final_weights():
    model = torch.nn.Linear(2, 2, bias=False)
    cb = EarlyStoppingCallback(patience=2)
    validate(cb, model, 10, 1.0, 1.0)
    state, control = validate(cb, model, 20, 0.5, 2.0)
    cb.on_train_end(None, state, control, model=model)
    assert torch.all(model.weight == 2.0) and cb.restored_step is None


def test_final_metrics_are_the_restored_steps():
    metrics = MetricsCallback(Path("unused-metrics.jsonl"))
    rows = [(2, {"loss": 2.0}), (2, {"eval_loss": 1.0}), (4, {"loss": 1.5}), (4, {"eval_loss": 1.2})]
    for step, logs in rows:
        metrics.on_log(
            None, SimpleNamespace(global_step=step, epoch=0, max_steps=4, is_world_process_zero=False), None, logs
        )
    early = EarlyStoppingCallback(patience=1)
    assert final_metrics([metrics, early]) == ({"train_loss": 1.5, "valid_loss": 1.2}, None)
    early.restored_step = 2
    assert final_metrics([metrics, early]) == ({"train_loss": 2.0, "valid_loss": 1.0}, 2)
