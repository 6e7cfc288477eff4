"""Text side of grounding: tokenizer, vocabulary, GloVe loader and sentence encoders.

Every method turns a query into word ids with :class:`Vocabulary`, embeds them with
:class:`WordEmbedding` (learned, or initialised from a GloVe text file) and encodes
them with one of the shared encoders: :class:`GRUEncoder` (uni- or bidirectional)
or :class:`TransformerTextEncoder`. All encoders take ``(ids [B, L], mask [B, L])``
and respect the padding mask.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(sentence: str) -> list[str]:
    """Lower-case word tokens; punctuation is dropped, contractions kept ("person's")."""
    return _TOKEN.findall(sentence.lower())


class Vocabulary:
    """Word <-> id mapping with reserved ids: ``<pad>`` = 0, ``<unk>`` = 1, ``<bos>`` = 2, ``<eos>`` = 3.

    Build it on the training split only (:meth:`build`), so that words unseen in
    training map to ``<unk>`` at test time, as they would in the real world.

    **Unknown words.** Every word missing from the vocabulary becomes one
    ``<unk>`` id, one id per unknown word, so a query keeps its length and the
    positions of its known words. A query whose words are *all* unknown (real
    test sets have some: rare nouns, typos) is therefore ``[<unk>] * n`` and is
    evaluated like any other, never refused: dropping it would flatter every
    method. Its vector is the ``<unk>`` row of the embedding table: with learned
    embeddings, the row's initialisation (``<unk>`` never occurs in training when
    the vocabulary holds every training word, so that row is not trained); with
    GloVe (:func:`load_glove`), the mean of the GloVe vectors found for the
    vocabulary.
    """

    def __init__(self, words: Sequence[str]):
        self.itos: list[str] = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    @classmethod
    def build(cls, sentences: Iterable[str], min_count: int = 1) -> "Vocabulary":
        """Vocabulary of every token seen at least ``min_count`` times, most frequent first."""
        counts = Counter(tok for s in sentences for tok in tokenize(s))
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(words)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def encode(self, sentence: str, max_len: int | None = None, where: str = "") -> list[int]:
        """Token ids of ``sentence`` (each unknown word -> ``<unk>``), cut to ``max_len``.

        A sentence whose words are all unknown encodes to ``<unk>`` ids (see the
        class docstring); it is not an error.

        Raises:
            ValueError: if the sentence has no word token (empty or punctuation
                only); ``where`` (e.g. ``"train.json['v_12'][0]"``) is included in
                the message.
        """
        tokens = tokenize(sentence)
        ids = [self.stoi.get(t, self.unk_id) for t in tokens][:max_len]
        if not ids:
            raise ValueError(f"{where}: empty query {sentence!r} (no word tokens)".lstrip(": "))
        return ids

    def unknown_fraction(self, sentence: str) -> float:
        """Fraction of the tokens of ``sentence`` that map to ``<unk>`` (0 for a token-less one)."""
        tokens = tokenize(sentence)
        return sum(t not in self.stoi for t in tokens) / max(len(tokens), 1)

    def decode(self, ids: Iterable[int]) -> str:
        """Words of ``ids``, stopping at ``<eos>`` and skipping ``<pad>``/``<bos>``."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.pad_id, self.bos_id):
                continue
            out.append(self.itos[i])
        return " ".join(out)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_glove(path: str | Path, vocab: Vocabulary, dim: int | None = None,
               seed: int = 0) -> tuple[torch.Tensor, float]:
    """Embedding matrix ``[len(vocab), dim]`` from a GloVe text file (``word v1 v2 ...`` per line).

    Rows, documented because they decide what a model sees:

    * a vocabulary word found in the file: its GloVe vector;
    * ``<unk>`` (every test word unseen in training, see :class:`Vocabulary`): the
      **mean of the GloVe vectors found for the vocabulary** -- an "average word",
      which sits among real words instead of at an arbitrary point; zeros when no
      word was found;
    * a vocabulary word missing from the file, ``<bos>`` and ``<eos>``: small
      random vectors ``N(0, 0.1^2)`` from ``seed`` (they occur in training, so they
      stay trainable and distinct);
    * ``<pad>``: zeros.

    ``dim`` is the expected width (e.g. a model's ``word_dim``); ``None`` takes it
    from the first line. The word is everything before the last ``dim`` fields, so
    the few tokens of ``glove.840B.300d.txt`` that contain spaces (``". . ."``)
    are read, not rejected.

    Returns the matrix and the fraction of the (non-special) vocabulary found in
    the file (coverage), which a chapter should report.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file and the line, for a vector of the wrong width
            (a different count of values than ``dim`` / the first line) or a
            non-numeric value; for a file without vectors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GloVe file not found: {path}")
    vectors: dict[str, np.ndarray] = {}
    with path.open(encoding="utf8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip()
            if not line:
                continue  # blank line
            if dim is None:
                dim = len(line.split(" ")) - 1
                if dim < 1:
                    raise ValueError(f"{path}:{lineno}: expected 'word v1 v2 ...', got {line[:60]!r}")
            parts = line.rsplit(" ", dim)
            word = parts[0]
            # Too few fields, or a "word" that ends in a number: the line has a
            # different width (a multi-token word like ". . ." never ends in one).
            if len(parts) != dim + 1 or (" " in word and _is_number(word.rsplit(" ", 1)[1])):
                width = len(line.split(" ")) - 1
                raise ValueError(f"{path}:{lineno}: word {line.split(' ')[0]!r} has {width} values, "
                                 f"expected {dim} (the width of the first line or the dim asked for)")
            if word in vocab.stoi:
                try:
                    vectors[word] = np.asarray(parts[1:], dtype=np.float32)
                except ValueError as exc:
                    raise ValueError(f"{path}:{lineno}: non-numeric value for word {word!r}") from exc
    if dim is None:
        raise ValueError(f"{path}: no vectors in file")
    gen = np.random.default_rng(seed)
    matrix = gen.normal(0.0, 0.1, size=(len(vocab), dim)).astype(np.float32)
    matrix[vocab.pad_id] = 0.0
    for word, vec in vectors.items():
        matrix[vocab.stoi[word]] = vec
    found = [vec for w, vec in vectors.items() if w not in SPECIALS]
    matrix[vocab.unk_id] = np.mean(found, axis=0) if found else 0.0
    regular = len(vocab) - len(SPECIALS)
    coverage = len(found) / max(regular, 1)
    return torch.from_numpy(matrix), coverage


class WordVectorConfig(dict):
    """Model-config fields made by :func:`word_vector_config`; ``.path`` and ``.coverage`` ride along.

    A plain ``dict`` for ``build(key, **fields)``; the two attributes are not fields.
    """

    path: str | None = None
    coverage: float | None = None


def word_vector_config(path: str | Path | None, vocab: Vocabulary, freeze: bool = False,
                       seed: int = 0) -> WordVectorConfig:
    """The one shared word-vector option: model-config fields from a GloVe text file.

    The methods that take word vectors share two config fields,
    ``pretrained_embeddings`` (a ``[vocab_size, word_dim]`` matrix, WSRA's
    original mechanism, now also MARN's and FIAN's) and ``freeze_embeddings``;
    this builds them from a file path::

        wv = word_vector_config("glove.6B.300d.txt", bench.vocab)
        model = wsg.models.build("marn", **bench.model_kwargs(), **wv)
        print(f"GloVe covers {wv.coverage:.1%} of the vocabulary")

    Returns an empty mapping for ``path=None`` (learned embeddings), else
    ``pretrained_embeddings``, ``freeze_embeddings`` and ``word_dim`` (the file's
    width). Merge it *last* into a config that already has a ``word_dim`` (a
    recipe's): ``build(key, **{**config, **wv})``. See :func:`load_glove` for the
    rows of unknown and special words. A checkpoint holds the embedding weights,
    so a model restored from one needs only ``word_dim``, not the file.
    """
    out = WordVectorConfig()
    if path is None:
        return out
    matrix, coverage = load_glove(path, vocab, seed=seed)
    out.update(pretrained_embeddings=matrix, freeze_embeddings=bool(freeze), word_dim=int(matrix.shape[1]))
    out.path, out.coverage = str(path), coverage
    return out


def check_pretrained(matrix, vocab_size: int, word_dim: int, owner: str = "config") -> None:
    """Check a ``pretrained_embeddings`` config field: ``None`` or a ``[vocab_size, word_dim]`` matrix.

    Raises:
        ValueError: naming ``owner`` and both shapes, e.g. a GloVe matrix built for
            another vocabulary, or ``word_dim`` left at 300 with 50-d vectors.
    """
    if matrix is None:
        return
    shape = tuple(getattr(matrix, "shape", ()))
    if shape != (vocab_size, word_dim):
        raise ValueError(f"{owner}.pretrained_embeddings has shape {list(shape)}, expected "
                         f"[vocab_size={vocab_size}, word_dim={word_dim}]: build it for this benchmark's "
                         "vocabulary with wsg.text.word_vector_config(path, bench.vocab), which also sets word_dim")


class WordEmbedding(nn.Embedding):
    """Word embeddings with ``<pad>`` fixed at zero; optionally initialised from GloVe.

    Args:
        vocab_size: number of ids.
        dim: embedding width (ignored when ``pretrained`` is given).
        pretrained: optional ``[vocab_size, dim]`` matrix (e.g. from :func:`load_glove`).
        freeze: keep pretrained vectors fixed.
    """

    def __init__(self, vocab_size: int, dim: int, pretrained: torch.Tensor | None = None, freeze: bool = False):
        if pretrained is not None:
            vocab_size, dim = pretrained.shape
        super().__init__(vocab_size, dim, padding_idx=Vocabulary.pad_id)
        if pretrained is not None:
            with torch.no_grad():
                self.weight.copy_(pretrained)
            self.weight.requires_grad_(not freeze)


class GRUEncoder(nn.Module):
    """Embeddings -> (Bi)GRU over the unpadded words.

    ``forward(ids, mask)`` returns ``(states [B, L, H*dirs], sentence [B, H*dirs])``;
    states at padded positions are zero. The sentence vector is the final hidden state
    (for a BiGRU: the forward direction's last state concatenated with the backward
    direction's first, i.e. the two final states).
    """

    def __init__(self, vocab_size: int, word_dim: int = 300, hidden: int = 256, bidirectional: bool = False,
                 num_layers: int = 1, pretrained: torch.Tensor | None = None, freeze: bool = False):
        super().__init__()
        self.embed = WordEmbedding(vocab_size, word_dim, pretrained, freeze)
        self.gru = nn.GRU(self.embed.embedding_dim, hidden, num_layers=num_layers, batch_first=True,
                          bidirectional=bidirectional)
        self.out_dim = hidden * (2 if bidirectional else 1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
        out, h = self.gru(packed)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        # h: [layers*dirs, B, H]; keep the top layer's directions.
        dirs = 2 if self.gru.bidirectional else 1
        sentence = h[-dirs:].transpose(0, 1).reshape(ids.shape[0], -1)
        return states, sentence


class TransformerTextEncoder(nn.Module):
    """Embeddings -> linear -> learnable positional encoding -> Transformer encoder.

    ``forward(ids, mask)`` returns ``(states [B, L, d_model], sentence [B, d_model])``
    where the sentence vector is the masked mean of the states.
    """

    def __init__(self, vocab_size: int, word_dim: int = 300, d_model: int = 256, heads: int = 4, layers: int = 1,
                 max_len: int = 64, dropout: float = 0.1, pretrained: torch.Tensor | None = None,
                 freeze: bool = False):
        super().__init__()
        self.embed = WordEmbedding(vocab_size, word_dim, pretrained, freeze)
        self.proj = nn.Linear(self.embed.embedding_dim, d_model)
        self.pos = nn.Parameter(torch.zeros(max_len, d_model))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out_dim = d_model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        L = ids.shape[1]
        if L > self.pos.shape[0]:
            raise ValueError(f"query of {L} tokens exceeds the positional table ({self.pos.shape[0]})")
        x = self.proj(self.embed(ids)) + self.pos[:L]
        states = self.encoder(x, src_key_padding_mask=~mask) * mask.unsqueeze(-1)
        sentence = masked_mean(states, mask, dim=1)
        return states, sentence


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``x`` over ``dim`` counting only positions where ``mask`` is True."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(dim) / m.sum(dim).clamp(min=1.0)
