import pytest
import torch

from wsg.text import GRUEncoder, TransformerTextEncoder, Vocabulary, load_glove, masked_mean, tokenize


def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("A person's  hand opens the Door.") == ["a", "person's", "hand", "opens", "the", "door"]


def test_vocabulary_specials_frequency_order_and_unknown():
    v = Vocabulary.build(["the cup", "the box", "the cup"])
    assert v.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert v.itos[4:] == ["the", "cup", "box"]  # by frequency, then alphabetically
    assert v.encode("The cup and the lamp") == [4, 5, 1, 4, 1]
    assert v.decode([2, 4, 5, 3, 6]) == "the cup"


def test_vocabulary_rejects_empty_queries_naming_the_record():
    v = Vocabulary.build(["the cup"])
    with pytest.raises(ValueError, match="train.json.*empty query"):
        v.encode(" ... ", where="train.json['v1'][0]")


def test_all_unknown_query_is_encoded_as_one_unk_per_word():
    # Real test sets hold queries made only of words unseen in training: they must be
    # evaluated (as <unk> ids), not refused. One <unk> per word keeps the query's length.
    v = Vocabulary.build(["the cup"])
    assert v.encode("Lamp, sofa!") == [v.unk_id, v.unk_id]
    assert v.encode("lamp sofa chair", max_len=2) == [1, 1]
    assert v.encode("the lamp") == [v.stoi["the"], v.unk_id]
    assert v.unknown_fraction("the lamp") == 0.5 and v.unknown_fraction("lamp sofa") == 1.0


def test_load_glove_reads_vectors_and_reports_coverage(tmp_path):
    f = tmp_path / "glove.txt"
    f.write_text("the 1 2 3\ncup 4 5 6\nzebra 7 8 9\n")
    v = Vocabulary.build(["the cup box"])
    matrix, coverage = load_glove(f, v)
    assert matrix.shape == (len(v), 3)
    assert matrix[v.stoi["cup"]].tolist() == [4, 5, 6]
    assert torch.all(matrix[v.pad_id] == 0)
    assert coverage == pytest.approx(2 / 3)  # the, cup found; box missing


def test_load_glove_names_file_and_line_of_a_bad_vector(tmp_path):
    f = tmp_path / "glove.txt"
    f.write_text("the 1 2 3\ncup 4 5\n")
    with pytest.raises(ValueError, match=r"glove.txt:2"):
        load_glove(f, Vocabulary.build(["the cup"]))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gru_encoder_ignores_padding(bidirectional):
    torch.manual_seed(0)
    enc = GRUEncoder(20, word_dim=8, hidden=6, bidirectional=bidirectional).eval()
    ids = torch.tensor([[5, 6, 7, 0, 0]])
    states, sent = enc(ids, ids != 0)
    states2, sent2 = enc(ids[:, :3], ids[:, :3] != 0)
    torch.testing.assert_close(sent, sent2)
    torch.testing.assert_close(states[:, :3], states2)
    assert torch.all(states[:, 3:] == 0)
    # the sentence vector is the final state of a plain run over the real words
    out, h = enc.gru(enc.embed(ids[:, :3]))
    expected = torch.cat([out[:, -1, :6], out[:, 0, 6:]], -1) if bidirectional else out[:, -1]
    torch.testing.assert_close(sent, expected)


def test_transformer_encoder_ignores_padding_and_means_real_words():
    torch.manual_seed(0)
    enc = TransformerTextEncoder(20, word_dim=8, d_model=16, heads=2, layers=1, dropout=0.0).eval()
    ids = torch.tensor([[5, 6, 7, 0, 0]])
    states, sent = enc(ids, ids != 0)
    states2, sent2 = enc(ids[:, :3], ids[:, :3] != 0)
    torch.testing.assert_close(states[:, :3], states2)
    torch.testing.assert_close(sent, states2.mean(1))


def test_masked_mean_matches_a_loop():
    x = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]], dtype=torch.bool)
    expected = torch.stack([x[i][mask[i]].mean(0) for i in range(3)])
    torch.testing.assert_close(masked_mean(x, mask, 1), expected)
