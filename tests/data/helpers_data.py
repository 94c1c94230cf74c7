"""Small stand-ins shared by the data-pipeline tests: a character-level toy tokenizer and corpus writers."""

import json
import os


class _Command:
    def __init__(self, name, token, Id):
        self.name, self.token, self.Id = name, token, Id


class _Tokenization:
    def __init__(self, ids):
        self.tokenization = ids


class ToyTokenizer:
    """Character-level: id = 16 + code point; command ids 0..6 (eos == pad == 0, as the BERT setup).
    Deterministic in every process (picklable, no state).  Encoding the text 'BOOM' raises, to test error
    handling."""
    tokenizer_class = 'ToyTokenizer'
    OFFSET = 16
    COMMANDS = {'pad': ('[PAD]', 0), 'eos': ('[PAD]', 0), 'ENC': ('[CLS]', 1), 'MASK': ('[MASK]', 2),
                'sep': ('[SEP]', 3), 'unk': ('[UNK]', 4), 'sop': ('<|startofpiece|>', 5),
                'eop': ('<|endofpiece|>', 6)}

    def __init__(self):
        self.command_name_map = {n: _Command(n, t, i) for n, (t, i) in self.COMMANDS.items()}
        self.num_tokens = self.OFFSET + 0x110000

    def EncodeAsIds(self, text):
        if text == 'BOOM':
            raise RuntimeError('toy tokenizer exploded')
        return _Tokenization([self.OFFSET + ord(c) for c in text])

    def get_command(self, name):
        return self.command_name_map[name]

    def IdToToken(self, idx):
        idx = int(idx)
        if idx < self.OFFSET:
            return next(t for t, i in self.COMMANDS.values() if i == idx) if idx <= 6 else '[unused]'
        return chr(idx - self.OFFSET)

    def DecodeIds(self, ids):
        return ''.join(self.IdToToken(i) for i in ids if int(i) >= self.OFFSET)


def write_jsonl(path, objs):
    os.makedirs(os.path.dirname(str(path)) or '.', exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        for obj in objs:
            f.write((obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)) + '\n')
    return str(path)


def write_bytes(path, data: bytes):
    with open(path, 'wb') as f:
        f.write(data)
    return str(path)


def sentences(n, seed=0):
    """n short pseudo-random English-ish sentences (deterministic)."""
    import random
    rng = random.Random(seed)
    words = 'the a king land of and he said unto them shall be in was for his with that'.split()
    out = []
    for _ in range(n):
        k = rng.randint(3, 12)
        out.append(' '.join(rng.choice(words) for _ in range(k)).capitalize() + rng.choice('.?!;:'))
    return out


def toy_corpus(path, docs=20, seed=0):
    """A JSON-lines corpus of ``docs`` documents of 1-8 sentences each."""
    import random
    rng = random.Random(seed)
    objs = [{'text': ' '.join(sentences(rng.randint(1, 8), seed=seed * 1000 + i))} for i in range(docs)]
    return write_jsonl(path, objs)
