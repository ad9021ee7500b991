"""The lab's data: magnitude spectrograms of the mix and the vocals, cut into 513 x 128 patches.

    python data.py                      # summary of the data train.py would use
    python data.py --root ~/MUSDB18     # the same for a MUSDB18 / MUSDB18-HQ folder

What the lab describes, in its order:

1. The features: each song's mono mix and vocals at 8192 Hz, STFT of 1024
   points (513 bins), hop 768, scaled so that the mix's loudest bin is 1
   (compute_features). X is the mix magnitude, Y the vocals magnitude.
2. The patches: 513 x 128 frames (about 12 s), random excerpts for
   training, a fixed tiling for validation (PatchDataset).
3. Augmentation: random gains, the vocals over another song's accompaniment,
   pitch and tempo (augment.py); the mix is always the sum of its parts.
4. The baseline: the loss of the best constant mask, the bar a model must
   clear (best_constant_mask_loss).

Finding, checking, splitting and caching the songs (each decoded once) is
songs.py's work; training_features asks it for the features of a run's songs.
"""

import cli  # first: says in one line how to install what is missing (cli.require_installed)

import os
import sys

import numpy as np
import torch
from torch.utils.data import Dataset

from audio import SignalConfig, magnitude_scale, resample, stft, to_mono
from cli import ArgumentParser, UserError, add_root_flag, add_training_songs_flag
from songs import DEFAULT_CACHE_DIR, DataError, cache_path, cached_features, split_data


# --------------------------------------------------------------------------
# 1. The features of a song
# --------------------------------------------------------------------------

def compute_features(mix, vocals, rate, signal_config):
    """Mono, resample, STFT, scale: complex64 array (2, freq_bins, frames).

    Row 0 is the vocals' STFT and row 1 the accompaniment's (mix - vocals),
    both scaled so that the mix magnitude peaks at 1. Keeping the complex
    parts, not magnitudes, lets augmentation remix sources while the mix
    stays their exact sum.
    """
    mono = np.stack([to_mono(mix), to_mono(vocals)])  # (2, samples)
    mono = resample(mono.T, rate, signal_config.sample_rate).T  # (2, samples_8k)
    spec = stft(torch.from_numpy(np.ascontiguousarray(mono)), signal_config)  # (2, F, frames)
    mix_spec, vocals_spec = spec[0], spec[1]
    scale = magnitude_scale(mix_spec.abs())
    out = torch.stack([vocals_spec, mix_spec - vocals_spec]) * scale  # (2, F, frames)
    return out.numpy().astype(np.complex64)


# --------------------------------------------------------------------------
# 2. Patches, and 3. augmentation
# --------------------------------------------------------------------------

class PatchDataset(Dataset):
    """(mix, vocals) scaled magnitude patches, float32 (freq_bins, patch_frames) each: the lab's X and Y.

    Training (samples_per_track > 0): each item is a random excerpt of song
    `index % n_songs`, at an offset drawn afresh every time it is asked for.
    Validation (samples_per_track == 0): a fixed tiling of every song from
    frame 0, the last patch zero-padded, so the loss is comparable across epochs.

    augment: per-source random gains (0.25 to 1.25) and, half the time, the
    accompaniment of another random song under this song's vocals; pitch_tempo
    (an augment.PitchTempo, or None): each source's own pitch and tempo shift.
    The mix is always rebuilt as vocals + accompaniment: the true sum.
    """

    def __init__(self, features, patch_frames, samples_per_track=0, augment=False, pitch_tempo=None):
        if not features:
            raise ValueError("PatchDataset needs at least one song")
        self.features = features  # one complex (2, F, frames) array per song: vocals, accompaniment
        self.patch_frames, self.samples_per_track = patch_frames, samples_per_track
        self.augment, self.pitch_tempo = augment, pitch_tempo
        if samples_per_track == 0:
            self.tiles = [(t, start) for t, f in enumerate(features)
                          for start in range(0, max(f.shape[-1], 1), patch_frames)]

    def __len__(self):
        return len(self.features) * self.samples_per_track if self.samples_per_track else len(self.tiles)

    def __getitem__(self, index):
        vocals_spec, accompaniment_spec = self.sources(index)  # complex (F, P) each
        mix_mag = np.abs(vocals_spec + accompaniment_spec)  # (F, P): the mix is always the sum of its parts
        return torch.from_numpy(mix_mag), torch.from_numpy(np.abs(vocals_spec))

    def sources(self, index):
        """Complex (vocals, accompaniment) STFT patches of item `index`, augmented if asked."""
        if not self.samples_per_track:
            song, start = self.tiles[index]
            return crop(self.features[song], start, self.patch_frames)
        vocals, accompaniment = self._random_crop(index % len(self.features))
        if self.augment:
            if len(self.features) > 1 and torch.rand(()).item() < 0.5:
                other = torch.randint(0, len(self.features), ()).item()
                accompaniment = self._random_crop(other)[1]
            vocals, accompaniment = random_gain(vocals), random_gain(accompaniment)
        if self.pitch_tempo:  # each source its own pitch and tempo, from a longer crop (augment.py)
            vocals, accompaniment = (self.pitch_tempo(s, self.patch_frames) for s in (vocals, accompaniment))
        return vocals, accompaniment

    def _random_crop(self, song):
        spec, frames = self.features[song], self.patch_frames
        frames = self.pitch_tempo.frames_needed(frames) if self.pitch_tempo else frames
        start = torch.randint(0, max(spec.shape[-1] - frames, 0) + 1, ()).item()
        return crop(spec, start, frames)

    def __getstate__(self):
        """What a DataLoader worker receives: the cache files' names, not their contents.

        Where workers are spawned (macOS, Windows), the dataset is pickled into
        each of them, and numpy pickles a memory-mapped array as a full copy of
        its data: every worker would hold the whole feature cache in memory.
        """
        state = dict(self.__dict__)
        if all(isinstance(f, np.memmap) and f.filename for f in self.features):
            state["features"] = [f.filename for f in self.features]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.features = [np.load(f, mmap_mode="r") if isinstance(f, str) else f for f in self.features]


def crop(spec, start, frames):
    """spec[..., start:start+frames], zero-padded at the end when the song is shorter."""
    out = np.zeros(spec.shape[:-1] + (frames,), dtype=spec.dtype)
    piece = spec[..., start:start + frames]
    out[..., :piece.shape[-1]] = piece
    return out


def random_gain(spec, low=0.25, high=1.25):
    """Scale a source by a gain drawn uniformly in [low, high] (a loudness change)."""
    gain = low + (high - low) * torch.rand(()).item()
    return spec * np.float32(gain)


# --------------------------------------------------------------------------
# 4. The baseline
# --------------------------------------------------------------------------

def best_constant_mask_loss(dataset):
    """Validation loss of the best mask that ignores its input: one constant c.

    mean|c*X - Y| is minimised by the weighted median of Y/X with weights X,
    so this is the bar a useful model has to get clearly below.
    """
    mix_mags, vocals_mags = zip(*(dataset[i] for i in range(len(dataset))))  # (F, P) each
    x, y = torch.stack(mix_mags).flatten().double(), torch.stack(vocals_mags).flatten().double()  # (N,) each
    keep = x > 0
    ratios, weights = y[keep] / x[keep], x[keep]
    order = torch.argsort(ratios)
    cumulative = torch.cumsum(weights[order], 0)
    c = ratios[order][torch.searchsorted(cumulative, cumulative[-1] / 2)].clamp(0, 1)
    return torch.mean(torch.abs(c * x - y)).item(), c.item()


# --------------------------------------------------------------------------
# The features of a run's songs (songs.py finds, checks and caches them)
# --------------------------------------------------------------------------

def load_features(songs, signal_config, cache_dir=DEFAULT_CACHE_DIR, quiet=False, jobs=1, report=print):
    """Each song's features (compute_features), decoded once and then read from the cache; None for a
    song that cannot be decoded (reported through `report`)."""
    return cached_features(songs, signal_config, cache_dir, compute_features, quiet, jobs, report)


def training_features(root, n_songs, signal_config, cache_dir=DEFAULT_CACHE_DIR, quiet=False, jobs=1, report=print):
    """(split, features of the training songs, of the validation songs) for train.py.

    Songs that cannot be decoded are left out (split.train and split.valid
    then hold the songs kept). A data set that cannot train (no training
    song, or none left for validation) is a DataError.
    """
    split = split_data(root, n_songs, quiet=quiet)
    for note in split.notes:
        report(note)
    features = load_features(split.train + split.valid, signal_config, cache_dir, quiet, jobs, report)
    train = [(song, f) for song, f in zip(split.train, features[:len(split.train)]) if f is not None]
    valid = [(song, f) for song, f in zip(split.valid, features[len(split.train):]) if f is not None]
    split.skipped += [(song.location, "could not be decoded") for song, f in zip(split.train + split.valid, features)
                      if f is None]
    if not train:
        raise DataError(f"{split.root} has no usable training song under train/"
                        + (" (see the lines above)" if split.skipped else ""))
    if not valid and split.valid:  # there were validation songs, and none could be decoded
        raise DataError(f"none of the validation songs of {split.root} could be decoded (see the lines above): "
                        "replace them, or move them out of train/ to validate on other songs")
    if not valid:
        raise DataError(f"{split.root} has a single usable training song; validation needs at least two")
    split.train, split.valid = [song for song, _ in train], [song for song, _ in valid]
    return split, [f for _, f in train], [f for _, f in valid]


# --------------------------------------------------------------------------
# Command line: a summary of the data
# --------------------------------------------------------------------------

def summarize(split, signal_config, cache_dir):
    """Lines describing the data: source, songs per split, durations, patches, cache, songs left out."""
    seconds_per_patch = signal_config.patch_frames * signal_config.hop_length / signal_config.sample_rate
    lines = [f"Data root:  {split.root}",
             f"Source:     {split.source}"
             + ("" if split.source.startswith("mixed") else
                f" ({'WAV folders' if split.is_wav else '.stem.mp4 files'})")]
    cached = total = 0
    for name, songs in (("train", split.train), ("valid", split.valid), ("test", split.test)):
        durations = [song.duration for song in songs]
        frames = [1 + int(d * signal_config.sample_rate) // signal_config.hop_length for d in durations]
        tiles = sum(-(-f // signal_config.patch_frames) for f in frames)
        lines.append(f"{name + ':':11} {len(songs):3d} songs, {sum(durations) / 60:6.1f} min, "
                     f"tiled by {tiles:4d} patches of {signal_config.patch_frames} frames "
                     f"({seconds_per_patch:.1f} s)")
        total, cached = total + len(songs), cached + sum(os.path.exists(cache_path(s, signal_config, cache_dir))
                                                         for s in songs)
    lines.append(f"Cache:      {cache_dir} ({cached} of {total} songs cached)")
    if split.skipped:
        lines.append(f"Left out:   {len(split.skipped)} (see the lines below)")
    lines.append("Validation scores these tiling patches; training instead draws --samples-per-track "
                 "random patches from each song every epoch.")
    return lines + split.notes


def get_args(argv=None):
    parser = ArgumentParser(description="Summarise the MUSDB18 data the U-Net would use.")
    add_root_flag(parser)
    add_training_songs_flag(parser)
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="where decoded spectrograms are cached")
    return parser.parse_args(argv)


def main(argv=None):
    cli.printable_output()
    args = get_args(argv)
    try:
        split = split_data(args.root, args.n_songs)
    except UserError as err:
        sys.exit(f"error: {err}")
    print("\n".join(summarize(split, SignalConfig(), args.cache_dir)))


if __name__ == "__main__":
    main()
