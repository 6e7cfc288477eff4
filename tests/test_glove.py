"""Word vectors: the GloVe text-file loader and the one shared model option, on a small generated file."""
import numpy as np
import pytest
import torch

import wsg.models
from wsg.text import SPECIALS, Vocabulary, load_glove, word_vector_config

torch.set_num_threads(1)

DIM = 6
WORDS = ["the", "person", "opens", "door", "a", "cup", ". . ."]   # ". . ." as in glove.840B


def write_glove(path, words=WORDS, dim=DIM, seed=0):
    """A GloVe-format file: ``word v1 .. v_dim`` per line; returns the vectors written."""
    rng = np.random.default_rng(seed)
    vecs = {w: rng.normal(size=dim).round(4) for w in words}
    path.write_text("".join(f"{w} {' '.join(f'{v:.4f}' for v in vec)}\n" for w, vec in vecs.items()))
    return vecs


@pytest.fixture
def vocab():
    return Vocabulary.build(["the person opens the door", "a person holds a sandwich"])


def test_rows_found_unknown_missing_and_pad(tmp_path, vocab):
    vecs = write_glove(tmp_path / "g.txt")
    matrix, coverage = load_glove(tmp_path / "g.txt", vocab, seed=3)
    assert matrix.shape == (len(vocab), DIM) and matrix.dtype == torch.float32
    found = ["the", "person", "opens", "door", "a"]
    for w in found:
        np.testing.assert_allclose(matrix[vocab.stoi[w]].numpy(), vecs[w], rtol=0, atol=1e-6)
    # <unk>: the mean of the GloVe vectors found for the vocabulary (computed here independently)
    np.testing.assert_allclose(matrix[vocab.unk_id].numpy(), np.mean([vecs[w] for w in found], 0), atol=1e-6)
    assert torch.all(matrix[vocab.pad_id] == 0)
    # words of the vocabulary missing from the file ("holds", "sandwich") and <bos>/<eos>: small random
    missing = [vocab.stoi["holds"], vocab.stoi["sandwich"], vocab.bos_id, vocab.eos_id]
    assert 0 < matrix[missing].abs().max() < 0.6 and not torch.equal(matrix[missing[0]], matrix[missing[1]])
    assert coverage == pytest.approx(5 / (len(vocab) - len(SPECIALS)))
    again, _ = load_glove(tmp_path / "g.txt", vocab, seed=3)
    assert torch.equal(matrix, again)                                     # seeded


def test_a_query_of_unknown_words_gets_the_unk_vector(tmp_path, vocab):
    write_glove(tmp_path / "g.txt")
    wv = word_vector_config(tmp_path / "g.txt", vocab)
    ids = torch.tensor([vocab.encode("zebras gallop")])
    assert ids.tolist() == [[vocab.unk_id, vocab.unk_id]]
    model = wsg.models.build("marn", vocab_size=len(vocab), video_dim=16, num_clips=8, scales=(2, 4),
                             proposal_dim=8, query_dim=8, attention_dim=8, decoder_dim=8, **wv)
    emb = model.query_encoder.embed(ids)
    torch.testing.assert_close(emb[0, 0], wv["pretrained_embeddings"][vocab.unk_id])


@pytest.mark.parametrize("content, line, message", [
    ("the 1 2 3\ncup 4 5\n", 2, "'cup' has 2 values, expected 3"),             # too short
    ("the 1 2 3\ncup 4 5 6 7\n", 2, "'cup' has 4 values, expected 3"),         # too long
    ("the 1 2 3\n\ncup 4 x 6\n", 3, "non-numeric value for word 'cup'"),
])
def test_wrong_width_or_value_names_file_and_line(tmp_path, content, line, message):
    f = tmp_path / "glove.txt"
    f.write_text(content)
    with pytest.raises(ValueError) as err:
        load_glove(f, Vocabulary.build(["the cup"]))
    assert f"{f}:{line}:" in str(err.value) and message in str(err.value)


def test_width_asked_for_is_checked_from_the_first_line(tmp_path, vocab):
    write_glove(tmp_path / "g50.txt", dim=5)
    with pytest.raises(ValueError, match=r"g50.txt:1: word 'the' has 5 values, expected 300"):
        load_glove(tmp_path / "g50.txt", vocab, dim=300)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_glove(tmp_path / "nope.txt", vocab)
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ValueError, match="no vectors"):
        load_glove(tmp_path / "empty.txt", vocab)


def test_words_with_spaces_are_read_not_rejected(tmp_path):
    vecs = write_glove(tmp_path / "g.txt")
    v = Vocabulary([". . .", "cup"])                     # a vocabulary that holds the odd token
    matrix, coverage = load_glove(tmp_path / "g.txt", v)
    np.testing.assert_allclose(matrix[v.stoi[". . ."]].numpy(), vecs[". . ."], atol=1e-6)
    assert coverage == 1.0


# ----------------------------------------------------------------------------- the shared model option

SMALL = {
    "marn": dict(scales=(2, 4), proposal_dim=8, query_dim=8, attention_dim=8, decoder_dim=8),
    "wsra": dict(text_hidden=8, hidden=8, phi_hidden=8),
    "fian": dict(hidden=8, heads=2, max_words=12),
    "fsan": dict(d_model=8, heads=2, layers=1, max_words=12),
    "vlanet": dict(hidden=8, dim=8),
}


def encoder_embedding(model, key):
    return {"marn": lambda m: m.query_encoder.embed, "wsra": lambda m: m.text.embed,
            "fian": lambda m: m.query_encoder.encoder.embed, "fsan": lambda m: m.text.embed,
            "vlanet": lambda m: m.text.embed}[key](model)


@pytest.mark.parametrize("key", sorted(SMALL))
@pytest.mark.parametrize("freeze", [False, True])
def test_every_glove_method_takes_the_same_option(tmp_path, vocab, key, freeze):
    write_glove(tmp_path / "g.txt")
    wv = word_vector_config(tmp_path / "g.txt", vocab, freeze=freeze)
    assert set(wv) == {"pretrained_embeddings", "freeze_embeddings", "word_dim"}
    assert wv["word_dim"] == DIM and wv.path == str(tmp_path / "g.txt") and 0 < wv.coverage < 1
    model = wsg.models.build(key, vocab_size=len(vocab), video_dim=16, num_clips=8, **SMALL[key], **wv)
    emb = encoder_embedding(model, key)
    assert emb.weight.shape == (len(vocab), DIM)
    torch.testing.assert_close(emb.weight.detach(), wv["pretrained_embeddings"])
    assert emb.weight.requires_grad is (not freeze)
    if key == "marn":                                       # the decoder shares the table
        assert model.reconstructor.embedding is emb


def test_no_path_means_learned_embeddings(vocab):
    assert word_vector_config(None, vocab) == {}


@pytest.mark.parametrize("key", sorted(set(SMALL) - {"wsra"}))
def test_a_matrix_of_the_wrong_shape_is_refused_by_the_config(tmp_path, vocab, key):
    write_glove(tmp_path / "g.txt")
    wv = word_vector_config(tmp_path / "g.txt", vocab)
    with pytest.raises(ValueError, match=r"pretrained_embeddings has shape \[%d, 6\].*word_dim=300" % len(vocab)):
        wsg.models.build(key, vocab_size=len(vocab), video_dim=16, num_clips=8, **SMALL[key],
                         pretrained_embeddings=wv["pretrained_embeddings"])   # word_dim left at 300
    with pytest.raises(ValueError, match="vocab_size=%d" % (len(vocab) + 1)):
        wsg.models.build(key, vocab_size=len(vocab) + 1, video_dim=16, num_clips=8, **SMALL[key], **wv)
