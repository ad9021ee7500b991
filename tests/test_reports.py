"""reports.py: what a run says when it ends, and the advice when it has not learned."""

import errno

import pytest

import reports
import train
from reports import not_learned_advice

def test_the_summary_of_a_run_whose_constant_mask_is_perfect_has_no_ratio():
    from reports import run_summary

    run = train.RunState(run_dir="", best_valid_loss=0.0, best_epoch=3, constant_mask_loss=0.0)  # an a cappella set
    assert "the constant-mask baseline is 0 here, so no ratio" in run_summary(run, "ckpt", 60.0, 1e-3, 30)
    run.constant_mask_loss = 0.002
    assert "(0.00 x the constant-mask baseline)" in run_summary(run, "ckpt", 60.0, 1e-3, 30)


@pytest.mark.parametrize("lr, steps, epochs, advice", [
    (1.0, 30, 20, "--lr 1 is high (the default is 1e-3): lower it."),
    (1e-3, 1, 20, "it took only 20 optimizer steps (1 per epoch): lower --batch-size"),
    (1e-3, 30, 20, "train longer"),
])
def test_a_run_that_did_not_learn_gets_the_advice_its_flags_point_to(lr, steps, epochs, advice):
    assert not_learned_advice(lr, steps, epochs).startswith(advice)


def test_a_tensorboard_writer_that_fails_to_open_leaves_none_and_the_next_write_opens_them_all(tmp_path, monkeypatch,
                                                                                               capsys):
    """Found by the fault injection: a writer failing to open left a half-open set, and the next write to a
    line without its writer was a KeyError traceback. Now: one warning, and the next write opens every writer."""
    real, calls = reports.SummaryWriter, []

    def flaky(folder, **kwargs):
        calls.append(folder)
        if len(calls) == 3:  # the third writer of the first set
            raise OSError(errno.EIO, "Input/output error", folder)
        return real(folder, **kwargs)

    monkeypatch.setattr(reports, "SummaryWriter", flaky)
    log = reports.RunLog(str(tmp_path / "run"), config={"args": {}})
    assert log.writers == {}
    assert capsys.readouterr().err.count("warning: could not write the TensorBoard log") == 1
    log.step(0.001, 1e-3, 1)  # opens them all, and writes
    log.write_config()
    assert set(log.writers) == {"run", *reports.LINES}
    assert (tmp_path / "run" / "config.json").is_file()
    log.close()


def test_the_loss_curve_draws_the_weights_as_trained_only_where_the_model_kept_is_another():
    """With the moving average (averaging.py) the validation loss of the weights is a line of its own; with
    --average-weights 0 (both columns equal) or a run of an older version (no column) there is none."""
    from figures import close_figure, loss_curve_figure

    def labels(history):
        fig = loss_curve_figure(history)
        names = [line.get_label() for line in fig.axes[0].get_lines()]
        close_figure(fig)
        return names

    row = {"epoch": 1, "train_loss": 2e-3, "valid_loss": 1e-3, "constant_mask_loss": 2e-3, "valid_sdr": 5.0,
           "mixture_sdr": -1.0, "oracle_sdr": 15.0}
    history = [dict(row, trained_valid_loss=1.2e-3), dict(row, epoch=2, valid_loss=9e-4, trained_valid_loss=1e-3)]
    assert "validation, the weights as trained" in labels(history)
    assert "validation, the weights as trained" not in labels([dict(r, trained_valid_loss=r["valid_loss"])
                                                                for r in history])
    assert "validation, the weights as trained" not in labels([row])
