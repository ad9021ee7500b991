"""Separate the vocals of a song with a trained U-Net, and plot mix / mask / vocals.

    python inference.py                              # first test song of the data in use
    python inference.py song.mp3 "other song.flac"   # any audio files
    python inference.py ~/Music/album -r             # every audio file of a folder (-r: and below)
    python inference.py --songs "Toy Song test 02"   # songs of the data set, by name
    python inference.py song.wav --format flac --bit-depth 24 --checkpoint checkpoints/final_model.pth
    python inference.py song.wav --reconstruction lab  # the lab's 8192 Hz reconstruction

Each song goes to <out-dir>/<song>/: vocals.wav and accompaniment.wav (the
input's length, channels and rate; they sum back to it), separation.png and
separation.json (what made them: a rerun skips the songs done so, --force
redoes them; only the files it lists are ever replaced). Many songs: batch.py.

The lab's step, in the order of this file: load the model (load), read the
audio and compute the mask (predict_mask), rebuild the vocals (reconstruct),
write them (separate_file, write_blocks), plot mix / mask / vocals
(plot_separation). The algorithm on arrays is in separation.py. From Python:

    from inference import load_model, separate
    model, signal_config = load_model("checkpoints/best_model.pth")
    vocals, accompaniment = separate(model, signal_config, audio, sample_rate)
"""

import cli

if __name__ == "__main__":  # Ctrl-C while the imports below load ends in one line too
    cli.exit_quietly_while_starting()

# The imports come after the handler on purpose: they are the slow part it covers.
import contextlib
import functools
import math
import os
import sys

import batch
import checkpoints
import figures
from audio import SUBTYPES, AudioError, AudioWriter, check_output_format, open_audio, read_block
from device import pick_device
from files import (RECORD, atomic_path, cannot_write, check_replaceable, identities, known_vocals, removed_on_failure,
                   still_listed, write_json)
from separation import SeparationOptions, mix_magnitude, plan_blocks, predict_mask, reconstruct, song_scale
from songs import find_songs, find_songs_by_name, skipped_line
from checkpoints import load_model  # noqa: F401 (with separate: `from inference import load_model, separate`)
from separation import separate  # noqa: F401


class InferenceError(cli.UserError):
    """A problem with what was asked to separate."""


def separate_file(model, signal_config, path, out_dir, options=SeparationOptions(), *, audio_format="wav",
                  bit_depth="16", plot=True, show=False, quiet=False, record=None):
    """Separate one audio file into out_dir/{vocals,accompaniment}.<wav|flac> (+ separation.png).

    Outputs appear only once complete: a failure or Ctrl-C leaves older files
    in place and no new folder behind, and they replace only files this
    project wrote (files.check_replaceable). `bit_depth`: "16", "24" or "32f"
    (float, WAV only: never clipped). separation.json lists the files it
    vouches for, first alone (a stop anywhere leaves files a rerun replaces),
    then with `record` once every one is whole. The figure's title names the
    model's checkpoint (checkpoints.load_model's label). Returns (files written, samples clipped).
    """
    names = output_names(audio_format, plot)
    check_replaceable(out_dir, names + [RECORD], "give another --out-dir", identities([path]))
    paths, record_path = [os.path.join(out_dir, name) for name in names], os.path.join(out_dir, RECORD)
    listed = still_listed(out_dir, names)
    with removed_on_failure(out_dir), open_audio(path) as f:
        if f.frames <= 0:
            raise AudioError(f"{path} holds no audio samples")
        check_output_format(path, f.channels, f.samplerate, audio_format, SUBTYPES[bit_depth][0])
        try:
            os.makedirs(out_dir, exist_ok=True)
            # The record first, vouching for no settings: whichever output a stop leaves, a rerun replaces it.
            write_json(record_path, {"files": listed})
            with contextlib.ExitStack() as outputs:  # each output under a temporary name, renamed at the end
                writers = [outputs.enter_context(AudioWriter(p, f.samplerate, f.channels, audio_format, bit_depth,
                                                             f.frames)) for p in paths[:2]]
                (mix, mask), (_, span, _, read_to) = write_blocks(model, signal_config, path, f, writers, options,
                                                                  quiet)
                if plot:  # inside `outputs` too: the song's files appear together, or none of them
                    title = figures.separation_title(os.path.basename(out_dir.rstrip(os.sep)), span / f.samplerate,
                                                     f.frames / f.samplerate, getattr(model, "label", None))
                    vocals = true_vocals(path, signal_config, read_to / f.samplerate, mix.shape[-1])
                    plot_separation(mix, mask, signal_config, title, outputs.enter_context(atomic_path(paths[2])),
                                    show, vocals=vocals)
            write_json(record_path, dict(record or {}, files=listed))  # every output whole: the record says how
        except OSError as err:  # reading fails as AudioError: this is a write
            raise InferenceError(cannot_write(err, out_dir, "pick another --out-dir")) from err
    return paths, sum(writer.clipped for writer in writers)


def output_names(audio_format, plot):
    """The files separate_file writes into a song's folder, besides the record."""
    return [f"vocals.{audio_format}", f"accompaniment.{audio_format}"] + (["separation.png"] if plot else [])


def write_blocks(model, signal_config, path, f, writers, options, quiet=False):
    """Separate the audio file `path`, open as `f`, into the open `writers` (audio.AudioWriter: vocals,
    accompaniment).

    A song longer than separation.BLOCK_SECONDS goes in blocks (plan_blocks) with margins of context, with
    the same result as in one piece. Returns (the first block's (mix magnitude, mask) cut to its own span,
    for the figure; that block, (0, end of its span, 0, end of what was read) in samples).
    """
    rate, n = f.samplerate, f.frames
    blocks = plan_blocks(n, rate, signal_config)
    scale = None  # one block: predict_mask finds the song's scale (the paper's) itself
    if len(blocks) > 1:  # several: the scale is the whole song's, found by a first pass over the blocks
        scale = song_scale((read_block(f, lo, hi) for _, _, lo, hi in blocks), rate, signal_config)
    figure = None
    for start, end, lo, hi in cli.progress_bar(blocks, quiet or len(blocks) == 1, desc=os.path.basename(path),
                                           unit="block"):
        audio = read_block(f, lo, hi)  # (samples, channels)
        mix, mask = predict_mask(model, signal_config, audio, rate, options.network_input, scale)  # (F, T) each
        parts = reconstruct(audio, rate, mask, signal_config, options, start=lo)  # (vocals, accompaniment)
        if figure is None:  # the frames of [0, end): the first block without its margin
            frames = math.ceil(end / rate * signal_config.sample_rate / signal_config.hop_length)
            figure = (mix[:, :frames], mask[:, :frames])
        for writer, part in zip(writers, parts):
            writer.write(part[start - lo:end - lo])
    return figure, blocks[0]


def plot_separation(mix, mask, signal_config, title, path=None, show=False, vocals=None):
    """Stacked spectrograms at the model's rate (figures.separation_panels: mix, predicted mask, estimated
    vocals, true `vocals` if known); returns the matplotlib figure, saved atomically to `path` if given."""
    seconds = mix.shape[-1] * signal_config.hop_length / signal_config.sample_rate
    panels = figures.separation_panels(mix, mask, vocals)
    fig = figures.spectrogram_figure(mix, panels, seconds, signal_config.sample_rate / 2, title=title,
                                     interactive=show)
    if path:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    if show:
        figures.show_figures()
    return fig


def true_vocals(path, signal_config, seconds, frames):
    """The true vocals' magnitude where a data set gives them (files.known_vocals), else None: their
    first `seconds`, read as the figure's mix was, at the model's STFT, cut to its `frames`."""
    known = known_vocals(path)
    if known is None:
        return None
    with open_audio(*known) as f:
        audio = read_block(f, 0, min(f.frames, round(seconds * f.samplerate)))  # (samples, channels)
    return mix_magnitude(audio, f.samplerate, signal_config)[:, :frames]  # (F, T)


def get_args(argv=None):
    p = cli.ArgumentParser(description="Separate the vocals of songs with a trained U-Net, plot mix / mask / vocals.")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="audio files or folders of them to separate (WAV, FLAC, OGG, MP3, MP4, .stem.mp4, ...); "
                        "none: the first test song of the data in use")
    p.add_argument("--input", action="append", default=None, metavar="FILE", help="another file or folder (repeatable)")
    p.add_argument("--recursive", "-r", action="store_true", help="also separate the files in subfolders")
    cli.add_song_flags(p)
    cli.add_root_flag(p)
    checkpoints.add_checkpoint_flag(p)
    p.add_argument("--out-dir", default="outputs", help="each song goes to OUT_DIR/<song name>/")
    p.add_argument("--format", choices=("wav", "flac"), default="wav", dest="audio_format",
                   help="file format of vocals and accompaniment")
    p.add_argument("--bit-depth", choices=tuple(SUBTYPES), default="16",
                   help="16 or 24-bit integers, or 32f: 32-bit float (WAV only), which never clips, so "
                        "vocals + accompaniment sum back to a loud input too")
    cli.add_separation_flags(p)
    p.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is available")
    p.add_argument("--no-plot", action="store_true", help="skip the figure (faster, for batch use)")
    p.add_argument("--show", action="store_true", help="also open the figure in a window")
    p.add_argument("--force", action="store_true", help="redo songs already done; replace another checkpoint's")
    p.add_argument("--quiet", action="store_true", help="print only errors and the closing summary")
    args = p.parse_args(argv)
    if args.no_plot and args.show:
        p.error("--show and --no-plot contradict each other")
    if args.audio_format == "flac" and args.bit_depth == "32f":
        p.error("FLAC holds 16 or 24-bit integers only: use --bit-depth 24, or --format wav for 32f")
    args.options = SeparationOptions.from_dict(vars(args))
    return args


def songs_to_separate(args):
    """[(name, path)] from the files and folders, --input, --songs, or the first test song."""
    files = args.files + (args.input or [])
    swallowed = [name for name in args.songs or [] if os.path.exists(name)]
    if swallowed:  # `--songs NAME song.wav`: --songs takes every word after it
        raise InferenceError(f"--songs took {swallowed[0]!r} as a song name: give audio files or --songs, not "
                             "both (files go before any flag)")
    if files and args.songs:
        raise InferenceError("give either audio files or --songs, not both")
    if files:
        return batch.songs_of(files, args.recursive, args.out_dir, args.quiet)
    root, songs, skipped = find_songs(args.root, quiet=args.quiet)
    for path, reason in skipped:
        print(skipped_line(path, reason))
    if not songs:
        raise InferenceError(f"{root} has no songs to separate")
    if args.songs is None:
        return [(songs[0].name, songs[0].path)]  # test songs come first
    return [(song.name, song.path) for song in find_songs_by_name(songs, args.songs, root, skipped=skipped)]


def main(argv=None):
    args = get_args(argv)
    cli.printable_output()
    try:
        checkpoint = checkpoints.find_checkpoint(args.checkpoint, args.quiet)
        model, signal_config = checkpoints.load_model(checkpoint, pick_device(args.cpu))
        plot = not args.no_plot
        separate_song = functools.partial(separate_file, model, signal_config, options=args.options,
                                          audio_format=args.audio_format, bit_depth=args.bit_depth, plot=plot,
                                          show=args.show, quiet=args.quiet)
        # Every setting that changes the files: with the checkpoint and the input, the record of a song.
        settings = {**args.options.to_dict(), "format": args.audio_format, "bit_depth": args.bit_depth, "plot": plot}
        failed = batch.separate_all(songs_to_separate(args), args.out_dir, separate_song, checkpoint, settings,
                              output_names(args.audio_format, plot), args.force, args.quiet)
    except cli.UserError as err:
        sys.exit(f"error: {err}")
    except KeyboardInterrupt:  # before the first song
        print("Interrupted: nothing was written.", file=sys.stderr)
        sys.exit(130)
    if failed:
        sys.exit(f"error: {len(failed)} of the songs could not be separated (see above)")
    if not args.quiet:
        print("Listen to vocals and accompaniment with any audio player.")


if __name__ == "__main__":
    cli.run_command(main)
