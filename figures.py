"""The project's figures: spectrograms (inference.py, TensorBoard) and the loss curve (train.py).

One convention for every magnitude panel: dB relative to the mix's loudest
bin (0 dB), shown from -80 to 0, so the same colour means the same level in
separation.png and in the TensorBoard figure; masks are shown from 0 to 1.

matplotlib is imported inside the functions, not at the top: importing pyplot
takes most of a second (benchmarks/README.md, "Fast paths"), which `python
inference.py --no-plot` and evaluate.py never need, and the backend (Agg for
files) must be chosen before pyplot loads.
"""

import math

import torch

_DB_RANGE = 80  # dB below the mix's loudest bin shown on the colour scale


def _relative_db(magnitude, reference):
    """20 log10(magnitude / reference): 0 dB at `reference`, -200 dB for silence."""
    return 20 * torch.log10(magnitude / reference + 1e-10)


def separation_panels(mix, mask, vocals=None):
    """The panels of every separation figure (separation.png, TensorBoard's): mix, predicted mask, estimated
    vocals = mask x mix and, where they are known, the true vocals; each (freq_bins, frames) at the model's STFT."""
    panels = [("Mix", mix, "magnitude"), ("Predicted vocals mask", mask, "mask"),
              ("Estimated vocals (mask x mix)", mask * mix, "magnitude")]
    return panels + ([("True vocals", vocals, "magnitude")] if vocals is not None else [])


def separation_title(song, shown, seconds, model_label=None):
    """The separation figure's title: the song, the part shown (`shown` of its `seconds`) if not all of it,
    and the model that separated it ("best_model.pth (epoch 20)")."""
    # A name that is not valid UTF-8 keeps its stray bytes as surrogates, which no font can draw.
    song = song.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    part = f" (first {shown:.0f} s of {seconds:.0f} s)" if shown < seconds else ""
    return f"{song}{part}" + (f" \N{EM DASH} {model_label}" if model_label else "")


def spectrogram_figure(mix, panels, seconds, max_hz, grid=False, title=None, interactive=False):
    """A matplotlib figure of spectrogram panels sharing their time and frequency axes.

    Args:
        mix: the mix magnitude (freq_bins, frames); its loudest bin is the 0 dB
            of every magnitude panel.
        panels: [(title, tensor (freq_bins, frames), "magnitude" or "mask")].
        seconds, max_hz: the extent of the time and frequency axes.
        grid: panels on a 2-column grid for TensorBoard, instead of stacked (a
            report page): TensorBoard scales an image down to its card's width,
            about 350 pixels, so the grid's text is larger and shorter (titles
            without their parenthesis, kHz, "dB"), and stays legible there.
        interactive: keep matplotlib's window backend, for plt.show().
    """
    import matplotlib
    if not interactive:
        matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt

    reference = float(mix.max()) or 1.0
    rows = -(-len(panels) // 2) if grid else len(panels)
    khz = 1000 if grid else 1
    with plt.rc_context({"font.size": 13, "axes.titlesize": 14} if grid else {}):
        fig, axes = plt.subplots(rows, 2 if grid else 1, figsize=(6.4, 2.8 * rows) if grid else (12, 3 * rows),
                                 sharex=True, sharey=True, squeeze=False)
        for ax, (name, image, kind) in zip(axes.flat, panels):
            if kind == "mask":
                data, style, unit = image, dict(vmin=0, vmax=1, cmap="magma"), "mask"
            else:
                data, style = _relative_db(image, reference), dict(vmin=-_DB_RANGE, vmax=0, cmap="viridis")
                unit = "dB" if grid else "dB re loudest mix bin"
            im = ax.imshow(data.numpy(), origin="lower", aspect="auto", extent=[0, seconds, 0, max_hz / khz], **style)
            ax.set_title(name.split(" (")[0] if grid else name)
            fig.colorbar(im, ax=ax, label=unit, pad=0.02 if grid else 0.01)
        for ax in axes.flat[len(panels):]:  # an odd number of panels on the grid
            ax.remove()
        for ax in axes[:, 0]:
            ax.set_ylabel("kHz" if grid else "frequency (Hz)")
        for ax in axes[-1, :]:
            ax.set_xlabel("s" if grid else "time (s)")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig


def close_figure(fig):
    """Let pyplot forget a figure it would otherwise keep alive until the process ends."""
    import matplotlib.pyplot as plt

    plt.close(fig)


def show_figures():
    """Open the figures drawn with interactive=True in windows, until they are closed."""
    import matplotlib.pyplot as plt

    plt.show()


def loss_curve_figure(history, best_epoch=None):
    """Two panels per epoch: the losses with the constant-mask baseline, and the validation
    vocals SDR between its floor (the mixture) and its ceiling (the oracle mask).

    Args:
        history: train.py's rows, dicts with epoch, train_loss, valid_loss
            (the model kept: the moving average of the weights), trained_valid_loss
            (the weights as trained), constant_mask_loss, and valid_sdr, mixture_sdr, oracle_sdr (NaN
            where undefined or not scored; rows of an older run may lack them).
        best_epoch: the epoch saved as best_model.pth, starred on both panels
            (default: the lowest validation loss).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    valid = [h["valid_loss"] for h in history]
    if best_epoch not in epochs:
        best_epoch = epochs[min(range(len(valid)), key=valid.__getitem__)]
    best = epochs.index(best_epoch)
    fig, (loss_ax, sdr_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    loss_ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    loss_ax.plot(epochs, valid, "s-", label="validation")
    trained = [h.get("trained_valid_loss", math.nan) for h in history]  # the moving average's run: averaging.py
    if any(t != v for t, v in zip(trained, valid) if math.isfinite(t)):
        loss_ax.plot(epochs, trained, ".:", color="tab:green", label="validation, the weights as trained")
    loss_ax.plot(epochs[best], valid[best], "*", markersize=16, color="tab:red",
                 label=f"best_model.pth (epoch {epochs[best]})")
    loss_ax.axhline(history[0]["constant_mask_loss"], color="gray", linestyle="--",
                    label="best constant mask (validation)")
    loss_ax.set_ylabel("masked L1 loss")
    loss_ax.set_title("loss")

    _sdr_panel(sdr_ax, history, best)
    for ax in (loss_ax, sdr_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.suptitle("U-Net training")
    fig.tight_layout()
    return fig


def _sdr_panel(ax, history, best):
    """loss_curve_figure's right panel: the validation SDR per epoch (the best epoch starred, index `best`)
    between the mixture's (floor) and the oracle's (ceiling)."""
    epochs, nan = [h["epoch"] for h in history], math.nan
    sdr = [h.get("valid_sdr", nan) for h in history]
    scored = [(e, v) for e, v in zip(epochs, sdr) if math.isfinite(v)]  # not epochs without an SDR
    if scored:
        ax.plot(*zip(*scored), "s-", color="tab:orange", label="validation (U-Net)")
    if math.isfinite(sdr[best]):
        ax.plot(epochs[best], sdr[best], "*", markersize=16, color="tab:red")
    for key, style, name in (("oracle_sdr", ":", "oracle ratio mask (ceiling)"),
                             ("mixture_sdr", "--", "mixture (floor)")):
        value = history[-1].get(key, nan)
        if math.isfinite(value):
            ax.axhline(value, color="gray", linestyle=style, label=name)
    if not scored:
        ax.text(0.5, 0.5, "no SDR: silent validation vocals", ha="center", transform=ax.transAxes)
    ax.set_ylabel("vocals SDR (dB), median over songs")
    ax.set_title("separation quality")
