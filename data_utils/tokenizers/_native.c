/* Optional compiled helper for the fast tokenizer path (data_utils/tokenizers/fast.py, native.py).
 *
 * It does in C what dominates the pure-Python fast path: cutting a text into chunks, looking chunks up in
 * a cache, and encoding the chunks made of printable ASCII -- BERT's lower-casing, punctuation split and
 * WordPiece; GPT-2's splitting expression and byte-level BPE, both exactly as the reference path does them.
 * Every other chunk (any non-ASCII byte; for BERT also control characters; for GPT-2 a pre-token longer
 * than LONG_PIECE) is handed to a Python callable, the pure-Python fast path, and its answer cached like
 * the rest. So the ids are the reference's: the C code only
 * ever handles characters whose treatment is plain ASCII rules, and the tests compare it with the
 * reference on the same inputs as the Python fast path.
 *
 * Python interface (all objects are capsules around the structures below):
 *   wordpiece_new(vocab: dict[str, int], lower: bool, unk_id: int, max_chars: int, specials: dict[str, int])
 *   bpe_new(whole: dict[str, int], byte_ids: list[int] (256), spelled: list[str] (256),
 *           merges: list[tuple[int, int, int]])
 *       whole: spelled token -> id for the tokens BPE leaves whole; byte_ids[b]: the id of byte b's token;
 *       spelled[b]: byte b's stand-in character; merges: (left id, right id, merged id) in rank order.
 *   encode(handle, text: str, fallback) -> list[int] | None
 *       fallback(chunk: str) -> sequence of ids, for a chunk the C code does not encode itself;
 *       None when the text as a whole must go to Python (see the encoders).
 *   cache_size(handle) -> int;  clear(handle)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#ifndef CACHE_LIMIT
#define CACHE_LIMIT 1000000 /* chunks remembered; then the cache starts again (as fast.py's _CACHE_LIMIT) */
#endif
/* BPE here rescans the pre-token after every merge (quadratic, as the reference); a longer pre-token (a
 * run of letters with no space, say) sends its chunk to the Python layer, whose Rust BPE is n log n. */
#define LONG_PIECE 256

/* ---- growable arrays ------------------------------------------------------------------------------- */

typedef struct { int32_t *data; size_t len, cap; } IntVec;

static int ivec_reserve(IntVec *v, size_t extra) {
    if (v->len + extra <= v->cap) return 0;
    size_t cap = v->cap ? v->cap : 64;
    while (cap < v->len + extra) cap *= 2;
    int32_t *data = PyMem_Realloc(v->data, cap * sizeof(int32_t));
    if (!data) { PyErr_NoMemory(); return -1; }
    v->data = data; v->cap = cap;
    return 0;
}

static int ivec_push(IntVec *v, int32_t x) {
    if (ivec_reserve(v, 1) < 0) return -1;
    v->data[v->len++] = x;
    return 0;
}

static int ivec_extend(IntVec *v, const int32_t *xs, size_t n) {
    if (ivec_reserve(v, n) < 0) return -1;
    memcpy(v->data + v->len, xs, n * sizeof(int32_t));
    v->len += n;
    return 0;
}

typedef struct { char *data; size_t len, cap; } ByteVec;

static int bvec_reserve(ByteVec *v, size_t extra) {
    if (v->len + extra <= v->cap) return 0;
    size_t cap = v->cap ? v->cap : 256;
    while (cap < v->len + extra) cap *= 2;
    char *data = PyMem_Realloc(v->data, cap);
    if (!data) { PyErr_NoMemory(); return -1; }
    v->data = data; v->cap = cap;
    return 0;
}

/* ---- a hash map from byte strings to runs of ids ------------------------------------------------- */

typedef struct { uint64_t hash; uint32_t key_off, key_len, val_off, val_len; } Entry;

typedef struct {
    Entry *entries;   /* open addressing, linear probing; hash 0 marks an empty slot */
    size_t cap, size;
    ByteVec keys;     /* all keys, back to back */
    IntVec vals;      /* all values, back to back */
} Map;

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ULL; }
    return h ? h : 1;
}

static void map_free(Map *m) {
    PyMem_Free(m->entries); PyMem_Free(m->keys.data); PyMem_Free(m->vals.data);
    memset(m, 0, sizeof(*m));
}

static int map_init(Map *m, size_t cap) {
    memset(m, 0, sizeof(*m));
    m->entries = PyMem_Calloc(cap, sizeof(Entry));
    if (!m->entries) { PyErr_NoMemory(); return -1; }
    m->cap = cap;
    return 0;
}

/* The entry holding key s[0:n], or NULL. */
static const Entry *map_get(const Map *m, const char *s, size_t n, uint64_t h) {
    size_t mask = m->cap - 1, i = h & mask;
    while (m->entries[i].hash) {
        const Entry *e = &m->entries[i];
        if (e->hash == h && e->key_len == n && memcmp(m->keys.data + e->key_off, s, n) == 0) return e;
        i = (i + 1) & mask;
    }
    return NULL;
}

static int map_grow(Map *m) {
    size_t cap = m->cap * 2, mask = cap - 1;
    Entry *entries = PyMem_Calloc(cap, sizeof(Entry));
    if (!entries) { PyErr_NoMemory(); return -1; }
    for (size_t j = 0; j < m->cap; j++) {
        if (!m->entries[j].hash) continue;
        size_t i = m->entries[j].hash & mask;
        while (entries[i].hash) i = (i + 1) & mask;
        entries[i] = m->entries[j];
    }
    PyMem_Free(m->entries);
    m->entries = entries; m->cap = cap;
    return 0;
}

/* Adds key s[0:n] (not present) with value ids[0:k]. */
static int map_put(Map *m, const char *s, size_t n, uint64_t h, const int32_t *ids, size_t k) {
    if ((m->size + 1) * 2 > m->cap && map_grow(m) < 0) return -1;
    if (bvec_reserve(&m->keys, n) < 0 || ivec_reserve(&m->vals, k) < 0) return -1;
    size_t mask = m->cap - 1, i = h & mask;
    while (m->entries[i].hash) i = (i + 1) & mask;
    Entry *e = &m->entries[i];
    e->hash = h; e->key_off = (uint32_t)m->keys.len; e->key_len = (uint32_t)n;
    e->val_off = (uint32_t)m->vals.len; e->val_len = (uint32_t)k;
    memcpy(m->keys.data + m->keys.len, s, n); m->keys.len += n;
    memcpy(m->vals.data + m->vals.len, ids, k * sizeof(int32_t)); m->vals.len += k;
    m->size++;
    return 0;
}

static void map_clear(Map *m) {
    memset(m->entries, 0, m->cap * sizeof(Entry));
    m->size = 0; m->keys.len = 0; m->vals.len = 0;
}

/* Fills `m` from a dict str -> int (keys as UTF-8). */
static int map_from_dict(Map *m, PyObject *dict) {
    size_t cap = 64;
    while (cap < (size_t)PyDict_Size(dict) * 2 + 2) cap *= 2;
    if (map_init(m, cap) < 0) return -1;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(dict, &pos, &key, &value)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(key, &n);
        if (!s) return -1;
        long id = PyLong_AsLong(value);
        if (id == -1 && PyErr_Occurred()) return -1;
        int32_t id32 = (int32_t)id;
        uint64_t h = hash_bytes(s, (size_t)n);
        if (!map_get(m, s, (size_t)n, h) && map_put(m, s, (size_t)n, h, &id32, 1) < 0) return -1;
    }
    return 0;
}

/* ---- shared chunk handling ------------------------------------------------------------------------ */

typedef struct Encoder Encoder;
typedef int (*EncodeAscii)(Encoder *enc, const char *s, size_t n, IntVec *out);

struct Encoder {
    int kind;          /* 0: WordPiece, 1: BPE */
    Map cache;         /* chunk -> ids */
    EncodeAscii encode_ascii;
    /* WordPiece */
    Map vocab;         /* token -> id */
    Map specials;      /* [CLS], [MASK], ... -> id: kept whole */
    int lower, max_chars;
    int32_t unk_id;
    /* BPE */
    Map whole;         /* spelled token that BPE leaves whole -> id */
    int32_t byte_ids[256];
    char spelled[256][3]; uint8_t spelled_len[256];  /* UTF-8 of each byte's stand-in character */
    Map merges;        /* 8-byte key (left id, right id) -> (rank, merged id) */
    IntVec scratch, scratch2;
    ByteVec buf;
};

static int is_ascii_chunk(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) if ((unsigned char)s[i] >= 0x80) return 0;
    return 1;
}

/* Ids of chunk s[0:n] appended to out: the cache, the ASCII encoder, or fallback(chunk). */
static int encode_chunk(Encoder *enc, const char *s, size_t n, PyObject *fallback, IntVec *out) {
    uint64_t h = hash_bytes(s, n);
    const Entry *e = map_get(&enc->cache, s, n, h);
    if (e) return ivec_extend(out, enc->cache.vals.data + e->val_off, e->val_len);
    if (enc->cache.size >= CACHE_LIMIT) map_clear(&enc->cache);
    if (is_ascii_chunk(s, n)) {
        /* Pure C from here to the end: no other thread can run, so the shared scratch vector is safe. */
        IntVec *ids = &enc->scratch;
        ids->len = 0;
        int done = enc->encode_ascii(enc, s, n, ids);
        if (done < 0) return -1;
        if (done) {
            if (map_put(&enc->cache, s, n, h, ids->data, ids->len) < 0) return -1;
            return ivec_extend(out, ids->data, ids->len);
        }
    }
    /* The Python path runs Python code, during which another thread may use this encoder: the ids go to a
     * vector of this call's own, and the chunk is looked up again before it is added. */
    PyObject *chunk = PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "surrogatepass");
    if (!chunk) return -1;
    PyObject *result = PyObject_CallOneArg(fallback, chunk);
    Py_DECREF(chunk);
    if (!result) return -1;
    PyObject *seq = PySequence_Fast(result, "the fallback must return a sequence of ids");
    Py_DECREF(result);
    if (!seq) return -1;
    IntVec ids = {0};
    Py_ssize_t k = PySequence_Fast_GET_SIZE(seq);
    int rc = ivec_reserve(&ids, (size_t)k + 1);
    for (Py_ssize_t i = 0; rc == 0 && i < k; i++) {
        long id = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (id == -1 && PyErr_Occurred()) rc = -1;
        else ids.data[ids.len++] = (int32_t)id;
    }
    Py_DECREF(seq);
    if (rc == 0 && !map_get(&enc->cache, s, n, h)) {
        if (enc->cache.size >= CACHE_LIMIT) map_clear(&enc->cache);
        rc = map_put(&enc->cache, s, n, h, ids.data, ids.len);
    }
    if (rc == 0) rc = ivec_extend(out, ids.data, ids.len);
    PyMem_Free(ids.data);
    return rc;
}

/* A Python list of the ids in `v`, which is freed. */
static PyObject *take_list(IntVec *v) {
    PyObject *list = PyList_New((Py_ssize_t)v->len);
    for (size_t k = 0; list && k < v->len; k++) {
        PyObject *id = PyLong_FromLong(v->data[k]);
        if (!id) { Py_CLEAR(list); break; }
        PyList_SET_ITEM(list, (Py_ssize_t)k, id);
    }
    PyMem_Free(v->data);
    v->data = NULL; v->len = v->cap = 0;
    return list;
}

/* ---- BERT: lower-casing, punctuation split, WordPiece --------------------------------------------- */

static int is_alnum(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Greedy longest-match-first WordPiece of one piece (ASCII), appended to out. */
static int wordpiece(Encoder *enc, const char *piece, size_t n, IntVec *out) {
    if (n > (size_t)enc->max_chars) return ivec_push(out, enc->unk_id);
    ByteVec *buf = &enc->buf;
    if (bvec_reserve(buf, n + 2) < 0) return -1;
    size_t mark = out->len, start = 0;
    while (start < n) {
        size_t end = n;
        int32_t found = -1;
        while (start < end) {
            const char *key = piece + start;
            size_t key_len = end - start;
            if (start > 0) {  /* a continuation: '##' + piece[start:end] */
                buf->data[0] = '#'; buf->data[1] = '#';
                memcpy(buf->data + 2, piece + start, key_len);
                key = buf->data; key_len += 2;
            }
            const Entry *e = map_get(&enc->vocab, key, key_len, hash_bytes(key, key_len));
            if (e) { found = enc->vocab.vals.data[e->val_off]; break; }
            end--;
        }
        if (found < 0) { out->len = mark; return ivec_push(out, enc->unk_id); }
        if (ivec_push(out, found) < 0) return -1;
        start = end;
    }
    return 0;
}

/* A chunk of printable ASCII (no space): lower-case, split off each punctuation character (every printable
 * ASCII character that is not a letter or digit), WordPiece each piece. 0 (not done) for other chunks. */
static int bert_encode_ascii(Encoder *enc, const char *s, size_t n, IntVec *out) {
    for (size_t i = 0; i < n; i++) if (s[i] < 0x21 || s[i] > 0x7e) return 0;
    uint64_t h = hash_bytes(s, n);
    const Entry *special = map_get(&enc->specials, s, n, h);
    if (special) return ivec_push(out, enc->specials.vals.data[special->val_off]) < 0 ? -1 : 1;
    char *word = PyMem_Malloc(n);
    if (!word) { PyErr_NoMemory(); return -1; }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        word[i] = (enc->lower && c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    size_t i = 0;
    int rc = 1;
    while (i < n && rc > 0) {
        size_t j = i + 1;
        if (is_alnum((unsigned char)word[i])) while (j < n && is_alnum((unsigned char)word[j])) j++;
        if (wordpiece(enc, word + i, j - i, out) < 0) rc = -1;
        i = j;
    }
    PyMem_Free(word);
    return rc;
}

/* Whitespace that ends a BERT chunk (as str.split()); the other ASCII white space BERT deletes instead. */
static int bert_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static PyObject *bert_encode(Encoder *enc, const char *s, size_t n, PyObject *fallback) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1f)) Py_RETURN_NONE;  /* deleted, not a break */
    }
    IntVec out = {0};
    size_t i = 0;
    while (i < n) {
        while (i < n && bert_space((unsigned char)s[i])) i++;
        size_t start = i;
        while (i < n && !bert_space((unsigned char)s[i])) i++;
        /* A chunk with non-ASCII bytes goes whole to the Python path, which also splits it on the Unicode
         * spaces inside it: BERT's words never cross ASCII white space, so the chunk is independent. */
        if (i > start && encode_chunk(enc, s + start, i - start, fallback, &out) < 0) {
            PyMem_Free(out.data);
            return NULL;
        }
    }
    return take_list(&out);
}

/* ---- GPT-2: the splitting expression on ASCII, byte-level BPE ------------------------------------- */

/* GPT-2's white space (Unicode White_Space) within ASCII; U+001C..U+001F are symbols to GPT-2. */
static int gpt2_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static int is_letter(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_other(unsigned char c) { return !gpt2_space(c) && !is_letter(c) && !is_digit(c); }

/* BPE of one pre-token (ASCII bytes), exactly as the reference: merge every occurrence of the adjacent
 * pair of lowest rank, left to right, until no pair has a rank. */
static int bpe(Encoder *enc, const char *s, size_t n, IntVec *out) {
    IntVec *parts = &enc->scratch2;
    parts->len = 0;
    for (size_t i = 0; i < n; i++) if (ivec_push(parts, enc->byte_ids[(unsigned char)s[i]]) < 0) return -1;
    while (parts->len > 1) {
        int64_t best_rank = -1;
        int32_t best_left = 0, best_right = 0, merged = 0;
        for (size_t i = 0; i + 1 < parts->len; i++) {
            int32_t key[2] = {parts->data[i], parts->data[i + 1]};
            const Entry *e = map_get(&enc->merges, (const char *)key, sizeof key, hash_bytes((const char *)key, sizeof key));
            if (!e) continue;
            int32_t rank = enc->merges.vals.data[e->val_off];
            if (best_rank < 0 || rank < best_rank) {
                best_rank = rank; best_left = key[0]; best_right = key[1];
                merged = enc->merges.vals.data[e->val_off + 1];
            }
        }
        if (best_rank < 0) break;
        size_t w = 0;
        for (size_t i = 0; i < parts->len;) {
            if (i + 1 < parts->len && parts->data[i] == best_left && parts->data[i + 1] == best_right) {
                parts->data[w++] = merged; i += 2;
            } else {
                parts->data[w++] = parts->data[i++];
            }
        }
        parts->len = w;
    }
    return ivec_extend(out, parts->data, parts->len);
}

/* Ids of one pre-token: a whole token (looked up by its spelling), else BPE. */
static int gpt2_piece(Encoder *enc, const char *s, size_t n, IntVec *out) {
    ByteVec *buf = &enc->buf;
    buf->len = 0;
    if (bvec_reserve(buf, 3 * n) < 0) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        memcpy(buf->data + buf->len, enc->spelled[c], enc->spelled_len[c]);
        buf->len += enc->spelled_len[c];
    }
    const Entry *e = map_get(&enc->whole, buf->data, buf->len, hash_bytes(buf->data, buf->len));
    if (e) return ivec_push(out, enc->whole.vals.data[e->val_off]);
    return bpe(enc, s, n, out);
}

/* Length of the contraction ('s 't 're 've 'm 'll 'd) at s[i:], or 0. */
static size_t contraction(const char *s, size_t n, size_t i) {
    if (s[i] != '\'' || i + 1 >= n) return 0;
    char a = s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 < n && ((a == 'r' && s[i + 2] == 'e') || (a == 'v' && s[i + 2] == 'e') || (a == 'l' && s[i + 2] == 'l')))
        return 3;
    return 0;
}

/* An ASCII chunk through GPT-2's expression 's|'t|'re|'ve|'m|'ll|'d| ?L+| ?N+| ?[^SLN]+|S+(?!\S)|S+ and BPE:
 * 1 (done), or 0 when a pre-token is longer than LONG_PIECE. Every ASCII character has its GPT-2 class here. */
static int gpt2_encode_ascii(Encoder *enc, const char *s, size_t n, IntVec *out) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t j = contraction(s, n, i);
        if (!j) {
            size_t k = i + (c == ' ' && i + 1 < n && !gpt2_space((unsigned char)s[i + 1]));  /* the optional space */
            unsigned char d = (unsigned char)s[k];
            if (k < n && !gpt2_space(d)) {
                int (*same)(unsigned char) = is_letter(d) ? is_letter : is_digit(d) ? is_digit : is_other;
                j = k + 1;
                while (j < n && same((unsigned char)s[j])) j++;
                j -= i;
            } else {  /* a run of white space: all of it at the end of the chunk, else all but its last */
                size_t e = i;
                while (e < n && gpt2_space((unsigned char)s[e])) e++;
                j = (e == n || e - i == 1) ? e - i : e - i - 1;
            }
        }
        if (j > LONG_PIECE) return 0;
        if (gpt2_piece(enc, s + i, j, out) < 0) return -1;
        i += j;
    }
    return 1;
}

static PyObject *gpt2_encode(Encoder *enc, const char *s, size_t n, PyObject *fallback) {
    IntVec out = {0};
    size_t start = 0;
    for (size_t i = 1; i <= n; i++) {
        /* A space after an ASCII character that is not white space always starts a new pre-token: cut
         * there. (After a non-ASCII character the class is unknown here: no cut, the chunk just grows.) */
        if (i < n && !(s[i] == ' ' && (unsigned char)s[i - 1] < 0x80 && !gpt2_space((unsigned char)s[i - 1])))
            continue;
        if (encode_chunk(enc, s + start, i - start, fallback, &out) < 0) { PyMem_Free(out.data); return NULL; }
        start = i;
    }
    return take_list(&out);
}

/* ---- Python interface ----------------------------------------------------------------------------- */

static void encoder_free(Encoder *enc) {
    map_free(&enc->cache); map_free(&enc->vocab); map_free(&enc->specials); map_free(&enc->whole);
    map_free(&enc->merges);
    PyMem_Free(enc->scratch.data); PyMem_Free(enc->scratch2.data); PyMem_Free(enc->buf.data);
    PyMem_Free(enc);
}

static void capsule_destructor(PyObject *capsule) {
    Encoder *enc = PyCapsule_GetPointer(capsule, "glm_tokenizer_encoder");
    if (enc) encoder_free(enc);
}

static Encoder *encoder_alloc(int kind) {
    Encoder *enc = PyMem_Calloc(1, sizeof(Encoder));
    if (!enc) { PyErr_NoMemory(); return NULL; }
    enc->kind = kind;
    if (map_init(&enc->cache, 1024) < 0 || map_init(&enc->vocab, 2) < 0 || map_init(&enc->specials, 2) < 0 ||
        map_init(&enc->whole, 2) < 0 || map_init(&enc->merges, 2) < 0) {
        encoder_free(enc);
        return NULL;
    }
    return enc;
}

static PyObject *wrap(Encoder *enc) {
    PyObject *capsule = PyCapsule_New(enc, "glm_tokenizer_encoder", capsule_destructor);
    if (!capsule) encoder_free(enc);
    return capsule;
}

static PyObject *py_wordpiece_new(PyObject *self, PyObject *args) {
    PyObject *vocab, *specials;
    int lower, max_chars, unk_id;
    if (!PyArg_ParseTuple(args, "O!piiO!", &PyDict_Type, &vocab, &lower, &unk_id, &max_chars, &PyDict_Type, &specials))
        return NULL;
    Encoder *enc = encoder_alloc(0);
    if (!enc) return NULL;
    map_free(&enc->vocab); map_free(&enc->specials);
    if (map_from_dict(&enc->vocab, vocab) < 0 || map_from_dict(&enc->specials, specials) < 0) {
        encoder_free(enc);
        return NULL;
    }
    enc->lower = lower; enc->max_chars = max_chars; enc->unk_id = unk_id;
    enc->encode_ascii = bert_encode_ascii;
    return wrap(enc);
}

static PyObject *py_bpe_new(PyObject *self, PyObject *args) {
    PyObject *whole, *byte_ids, *merges, *spelled;
    if (!PyArg_ParseTuple(args, "O!O!O!O!", &PyDict_Type, &whole, &PyList_Type, &byte_ids, &PyList_Type, &spelled,
                          &PyList_Type, &merges))
        return NULL;
    if (PyList_GET_SIZE(byte_ids) != 256 || PyList_GET_SIZE(spelled) != 256) {
        PyErr_SetString(PyExc_ValueError, "byte_ids and spelled must have 256 entries");
        return NULL;
    }
    Encoder *enc = encoder_alloc(1);
    if (!enc) return NULL;
    map_free(&enc->whole);
    if (map_from_dict(&enc->whole, whole) < 0) goto fail;
    for (int b = 0; b < 256; b++) {
        long id = PyLong_AsLong(PyList_GET_ITEM(byte_ids, b));
        if (id == -1 && PyErr_Occurred()) goto fail;
        enc->byte_ids[b] = (int32_t)id;
        Py_ssize_t len;
        const char *utf8 = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(spelled, b), &len);
        if (!utf8) goto fail;
        if (len < 1 || len > 3) { PyErr_SetString(PyExc_ValueError, "a stand-in character must be 1-3 UTF-8 bytes"); goto fail; }
        memcpy(enc->spelled[b], utf8, (size_t)len);
        enc->spelled_len[b] = (uint8_t)len;
    }
    Py_ssize_t count = PyList_GET_SIZE(merges);
    map_free(&enc->merges);
    size_t cap = 64;
    while (cap < (size_t)count * 2 + 2) cap *= 2;
    if (map_init(&enc->merges, cap) < 0) goto fail;
    for (Py_ssize_t r = 0; r < count; r++) {
        int left, right, merged;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(merges, r), "iii", &left, &right, &merged)) goto fail;
        int32_t key[2] = {left, right}, value[2] = {(int32_t)r, merged};
        uint64_t h = hash_bytes((const char *)key, sizeof key);
        if (!map_get(&enc->merges, (const char *)key, sizeof key, h) &&
            map_put(&enc->merges, (const char *)key, sizeof key, h, value, 2) < 0)
            goto fail;
    }
    enc->encode_ascii = gpt2_encode_ascii;
    return wrap(enc);
fail:
    encoder_free(enc);
    return NULL;
}

static Encoder *get_encoder(PyObject *capsule) {
    return PyCapsule_GetPointer(capsule, "glm_tokenizer_encoder");
}

static PyObject *py_encode(PyObject *self, PyObject *args) {
    PyObject *capsule, *text, *fallback;
    if (!PyArg_ParseTuple(args, "OUO", &capsule, &text, &fallback)) return NULL;
    Encoder *enc = get_encoder(capsule);
    if (!enc) return NULL;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    if (!s) {  /* e.g. a lone surrogate: the Python path handles it */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return enc->kind == 0 ? bert_encode(enc, s, (size_t)n, fallback) : gpt2_encode(enc, s, (size_t)n, fallback);
}

static PyObject *py_cache_size(PyObject *self, PyObject *capsule) {
    Encoder *enc = get_encoder(capsule);
    return enc ? PyLong_FromSize_t(enc->cache.size) : NULL;
}

static PyObject *py_clear(PyObject *self, PyObject *capsule) {
    Encoder *enc = get_encoder(capsule);
    if (!enc) return NULL;
    map_clear(&enc->cache);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"wordpiece_new", py_wordpiece_new, METH_VARARGS, "A BERT WordPiece encoder."},
    {"bpe_new", py_bpe_new, METH_VARARGS, "A GPT-2 byte-level BPE encoder."},
    {"encode", py_encode, METH_VARARGS, "Ids of a text, or None when it must go to the Python path."},
    {"cache_size", py_cache_size, METH_O, "Chunks in the cache."},
    {"clear", py_clear, METH_O, "Empty the chunk cache."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_glm_tokenizers_native", .m_size = -1, .m_methods = methods,
};

PyMODINIT_FUNC PyInit__glm_tokenizers_native(void) { return PyModule_Create(&module); }
