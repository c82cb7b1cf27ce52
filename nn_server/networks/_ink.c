/* LeNet's preprocessing after the decode, in one compiled pass per step.

   nn_server/networks/digits.py is the definition: ink map, crop, restroke and centring as
   ~35 NumPy/OpenCV calls on images of 28-256 px, where the calls' own overhead, not the
   pixels, is most of the cost (~120 us of a request's ~190 us). This file computes the
   same thing in two calls, operation for operation in the same float32/float64
   arithmetic, so its digits are the Python path's digits (tests/test_ink_kernel.py checks
   them pixel for pixel). Python keeps the OpenCV steps that are not call-bound: the
   decode, the Gaussian smoothing and the resize.

   Build: -ffp-contract=off, so that no multiply-add is fused: NumPy rounds each one.
   No NumPy headers: arrays come in through the buffer protocol and leave as bytes. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The constants of digits.py and images.py; tests/test_ink_kernel.py compares them. */
#define INK_THRESHOLD 0.25f
#define FAINT 0.15f
#define BLOCKS 8
#define PAPER_FRACTION 0.25
#define TOP_FRACTION 0.995
#define QUANTILE_SAMPLES 4096
#define TARGET_STROKE 0.11
#define THICK_STROKE 1.5
#define MAX_STROKE_WINDOW 31
#define CANVAS 28

/* What ink_box answers instead of a crop (digits.py raises BlankImage for each). */
#define NO_CONTRAST 1
#define NO_INK 2

typedef enum { ERODE, DILATE } Morph;

static inline float pick(Morph op, float a, float b) {
    return op == ERODE ? (a < b ? a : b) : (a > b ? a : b);
}

/* A running min (max) over windows of `size` along a line, by van Herk / Gil-Werman:
   three comparisons per value whatever the window. A "value" is a row of `lanes` floats,
   so the same loops do one image row (lanes 1) or all columns at once (lanes w, where
   they vectorise). `line` holds n + size - 1 values, the input with its border already
   added; `fwd` and `bwd` are scratch of the same length; out gets n values. */
static void window_lines(Morph op, const float *line, Py_ssize_t n, int size,
                         Py_ssize_t lanes, float *fwd, float *bwd, float *out) {
    Py_ssize_t len = n + size - 1;
    for (Py_ssize_t start = 0; start < len; start += size) {
        Py_ssize_t end = start + size < len ? start + size : len;
        memcpy(fwd + start * lanes, line + start * lanes, sizeof(float) * lanes);
        for (Py_ssize_t i = start + 1; i < end; i++) {
            const float *prev = fwd + (i - 1) * lanes, *cur = line + i * lanes;
            float *dst = fwd + i * lanes;
            for (Py_ssize_t k = 0; k < lanes; k++) dst[k] = pick(op, prev[k], cur[k]);
        }
        memcpy(bwd + (end - 1) * lanes, line + (end - 1) * lanes, sizeof(float) * lanes);
        for (Py_ssize_t i = end - 2; i >= start; i--) {
            const float *next = bwd + (i + 1) * lanes, *cur = line + i * lanes;
            float *dst = bwd + i * lanes;
            for (Py_ssize_t k = 0; k < lanes; k++) dst[k] = pick(op, next[k], cur[k]);
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const float *b = bwd + i * lanes, *f = fwd + (i + size - 1) * lanes;
        float *dst = out + i * lanes;
        for (Py_ssize_t k = 0; k < lanes; k++) dst[k] = pick(op, b[k], f[k]);
    }
}

/* dst (w x h) = src (h x w) transposed (at most 256 x 256: it stays in the cache). */
#define TRANSPOSE(name, T)                                               \
    static void name(const T *src, Py_ssize_t h, Py_ssize_t w, T *dst) { \
        for (Py_ssize_t x = 0; x < w; x++) {                             \
            T *d = dst + x * h;                                          \
            const T *s = src + x;                                        \
            for (Py_ssize_t y = 0; y < h; y++) d[y] = s[y * w];          \
        }                                                                \
    }
TRANSPOSE(transpose_floats, float)
TRANSPOSE(transpose_doubles, double)

/* The min (max) filter of a size-tall window down the columns of src (h x w), with
   replicated or neutral rows beyond the top and bottom. `work` has room for
   3 * (h + size - 1) * w floats. */
static void morph_columns(Morph op, const float *src, Py_ssize_t h, Py_ssize_t w, int size,
                          int replicate, float *work, float *dst) {
    int r = size / 2;
    Py_ssize_t len = h + size - 1;
    float neutral = op == ERODE ? INFINITY : -INFINITY;
    float *padded = work, *fwd = work + len * w, *bwd = work + 2 * len * w;
    memcpy(padded + r * w, src, sizeof(float) * h * w);
    for (int i = 0; i < r; i++) {
        float *top = padded + i * w, *bottom = padded + (h + r + i) * w;
        if (replicate) {
            memcpy(top, src, sizeof(float) * w);
            memcpy(bottom, src + (h - 1) * w, sizeof(float) * w);
        } else {
            for (Py_ssize_t x = 0; x < w; x++) top[x] = bottom[x] = neutral;
        }
    }
    window_lines(op, padded, h, size, w, fwd, bwd, dst);
}

/* cv2.erode / cv2.dilate with a size x size square. replicate: BORDER_REPLICATE (the
   background estimate); otherwise OpenCV's default border, which is neutral (a window
   simply ignores what lies outside the image). The square is separable, and a min is
   exact in any order: down the columns, then (transposed) along the rows. */
static int morph(Morph op, const float *src, Py_ssize_t h, Py_ssize_t w, int size,
                 int replicate, float *dst) {
    Py_ssize_t longer = h > w ? h : w;
    float *work = malloc(sizeof(float) * 3 * (longer + size - 1) * longer);
    float *a = malloc(sizeof(float) * h * w), *b = malloc(sizeof(float) * h * w);
    if (work == NULL || a == NULL || b == NULL) {
        free(work);
        free(a);
        free(b);
        return -1;
    }
    morph_columns(op, src, h, w, size, replicate, work, a);
    transpose_floats(a, h, w, b);
    morph_columns(op, b, w, h, size, replicate, work, a);
    transpose_floats(a, w, h, dst);
    free(work);
    free(a);
    free(b);
    return 0;
}

/* cv2.blur (normalised box, BORDER_REPLICATE) on float32, in OpenCV's own arithmetic: a
   running float64 sum along each row (new - old added to it), then a running sum of
   those down the columns, times 1 / size^2. The row pass runs on the transposed image,
   so that both passes go across independent lanes rather than along one dependent sum. */
static int box_blur(const float *src, Py_ssize_t h, Py_ssize_t w, int size, float *dst) {
    int r = size / 2;
    Py_ssize_t len = w + size - 1;
    double scale = 1.0 / ((double)size * size);
    float *t = malloc(sizeof(float) * len * h);
    double *sums_t = malloc(sizeof(double) * w * h), *sums = malloc(sizeof(double) * h * w);
    double *acc = malloc(sizeof(double) * (h > w ? h : w));
    if (t == NULL || sums_t == NULL || sums == NULL || acc == NULL) {
        free(t);
        free(sums_t);
        free(sums);
        free(acc);
        return -1;
    }
    /* t: the rows with their replicated border, transposed (len x h). */
    transpose_floats(src, h, w, t + r * h);
    for (int i = 0; i < r; i++) {
        memcpy(t + i * h, t + r * h, sizeof(float) * h);
        memcpy(t + (w + r + i) * h, t + (w + r - 1) * h, sizeof(float) * h);
    }
    for (Py_ssize_t y = 0; y < h; y++) acc[y] = 0;
    for (int i = 0; i < size; i++)
        for (Py_ssize_t y = 0; y < h; y++) acc[y] += (double)t[i * h + y];
    memcpy(sums_t, acc, sizeof(double) * h);
    for (Py_ssize_t x = 0; x + 1 < w; x++) {
        const float *add = t + (x + size) * h, *drop = t + x * h;
        double *d = sums_t + (x + 1) * h;
        for (Py_ssize_t y = 0; y < h; y++) {
            acc[y] += (double)add[y] - (double)drop[y];
            d[y] = acc[y];
        }
    }
    transpose_doubles(sums_t, w, h, sums);
#define ROW(i) (sums + ((i) - r < 0 ? 0 : (i) - r >= h ? h - 1 : (i) - r) * w)
    for (Py_ssize_t x = 0; x < w; x++) acc[x] = 0;
    for (int i = 0; i < size - 1; i++) {
        const double *p = ROW(i);
        for (Py_ssize_t x = 0; x < w; x++) acc[x] += p[x];
    }
    for (Py_ssize_t y = 0; y < h; y++) {
        const double *add = ROW(y + size - 1), *drop = ROW(y);
        float *d = dst + y * w;
        for (Py_ssize_t x = 0; x < w; x++) {
            double s0 = acc[x] + add[x];
            d[x] = (float)(s0 * scale);
            acc[x] = s0 - drop[x];
        }
    }
#undef ROW
    free(t);
    free(sums_t);
    free(sums);
    free(acc);
    return 0;
}

/* The k-th smallest of values[0..n) (Wirth's selection; reorders values): what
   np.partition puts at index k. */
static float select_rank(float *values, Py_ssize_t n, Py_ssize_t k) {
    Py_ssize_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = values[k];
        Py_ssize_t i = lo, j = hi;
        do {
            while (values[i] < pivot) i++;
            while (pivot < values[j]) j--;
            if (i <= j) {
                float t = values[i];
                values[i++] = values[j];
                values[j--] = t;
            }
        } while (i <= j);
        if (j < k) lo = i;
        if (k < i) hi = j;
    }
    return values[k];
}

#define BUCKETS 1024

/* images.quantiles: the values at int(f * m) of the m <= ~QUANTILE_SAMPLES evenly spread
   samples of values[0..n). A selection over all m mispredicts a branch on nearly every
   noisy pixel, so the samples are first counted into BUCKETS equal slices of their range
   (a monotonic map, so rank r lies in the slice where the counts pass r), and only that
   slice's samples are selected from. `scratch` has room for n floats. */
static void quantiles(const float *values, Py_ssize_t n, const double *fractions, int count,
                      float *scratch, double *out) {
    Py_ssize_t step = n > 2 * QUANTILE_SAMPLES ? n / QUANTILE_SAMPLES : 1;
    Py_ssize_t m = (n + step - 1) / step;
    float lo = values[0], hi = values[0];
    for (Py_ssize_t i = 0; i < n; i += step) {
        lo = values[i] < lo ? values[i] : lo;
        hi = values[i] > hi ? values[i] : hi;
    }
    if (lo == hi) {
        for (int q = 0; q < count; q++) out[q] = (double)lo;
        return;
    }
    float gain = (float)BUCKETS / (hi - lo);
#define SLICE(v) ((Py_ssize_t)(((v) - lo) * gain) < BUCKETS - 1 ? (Py_ssize_t)(((v) - lo) * gain) \
                                                                  : BUCKETS - 1)
    /* Four interleaved tallies: a flat page would otherwise increment one counter in a
       chain of dependent stores. */
    uint32_t tally[4][BUCKETS];
    memset(tally, 0, sizeof tally);
    Py_ssize_t i = 0, seen = 0;
    for (; i + 3 * step < n; i += 4 * step, seen += 4) {
        tally[0][SLICE(values[i])]++;
        tally[1][SLICE(values[i + step])]++;
        tally[2][SLICE(values[i + 2 * step])]++;
        tally[3][SLICE(values[i + 3 * step])]++;
    }
    for (; i < n; i += step) tally[0][SLICE(values[i])]++;
    for (int q = 0; q < count; q++) {
        Py_ssize_t rank = (Py_ssize_t)(fractions[q] * (double)m);
        if (rank > m - 1) rank = m - 1;
        Py_ssize_t slice = 0, below = 0;
        for (;; slice++) {
            Py_ssize_t here = tally[0][slice] + tally[1][slice] + tally[2][slice] + tally[3][slice];
            if (rank < below + here) break;
            below += here;
        }
        Py_ssize_t kept = 0;
        for (Py_ssize_t j = 0; j < n; j += step) {
            scratch[kept] = values[j];
            kept += SLICE(values[j]) == slice;
        }
        out[q] = (double)select_rank(scratch, kept, rank - below);
    }
#undef SLICE
}

typedef struct {
    float *pixels;
    Py_ssize_t h, w;
} Box;

/* digits.ink_map, crop_to_ink and restroke. Returns 0 with *box filled (malloc'd pixels),
   NO_CONTRAST or NO_INK, or -1 when out of memory. */
static int ink_box(const float *gray, Py_ssize_t h, Py_ssize_t w, Box *box) {
    Py_ssize_t n = h * w;
    int status = -1;
    float *ink = malloc(sizeof(float) * n), *work = malloc(sizeof(float) * n);
    float *scratch = malloc(sizeof(float) * n);
    Py_ssize_t border = 2 * (h + w); /* more than n for slivers such as 1 x 256 */
    float *keys = malloc(sizeof(float) * (n > border ? n : border));
    float *edge = malloc(sizeof(float) * border);
    if (ink == NULL || work == NULL || scratch == NULL || keys == NULL || edge == NULL)
        goto done;

    /* Polarity from the border's median (images.border_level). */
    Py_ssize_t b = 0;
    for (Py_ssize_t x = 0; x < w; x++) edge[b++] = gray[x];
    for (Py_ssize_t x = 0; x < w; x++) edge[b++] = gray[(h - 1) * w + x];
    for (Py_ssize_t y = 0; y < h; y++) edge[b++] = gray[y * w];
    for (Py_ssize_t y = 0; y < h; y++) edge[b++] = gray[y * w + w - 1];
    double half = 0.5, level;
    quantiles(edge, b, &half, 1, keys, &level);
    int invert = level > 0.5;
    for (Py_ssize_t i = 0; i < n; i++) ink[i] = invert ? 1.0f - gray[i] : gray[i];

    /* Minus the paper under it (digits.background). */
    Py_ssize_t shorter = h < w ? h : w;
    int size = (int)(3 * (shorter / BLOCKS));
    size = (size < 3 ? 3 : size) | 1;
    if (morph(ERODE, ink, h, w, size, 1, work) < 0) goto done;
    if (box_blur(work, h, w, size, scratch) < 0) goto done;
    for (Py_ssize_t i = 0; i < n; i++) ink[i] = ink[i] - scratch[i];

    double fractions[2] = {PAPER_FRACTION, TOP_FRACTION}, levels[2];
    quantiles(ink, n, fractions, 2, keys, levels);
    double paper = levels[0], top = levels[1] - paper;
    if (top < 0.05) {
        status = NO_CONTRAST;
        goto done;
    }
    float offset = (float)paper, gain = (float)(1.0 / top);
    for (Py_ssize_t i = 0; i < n; i++) {
        float v = ink[i] - offset;
        v = v * gain;
        v = v > FAINT ? v : 0.0f;     /* THRESH_TOZERO */
        ink[i] = v > 1.0f ? 1.0f : v; /* THRESH_TRUNC */
    }

    /* The tight box around the ink, ignoring specks in otherwise empty rows/columns. */
    Py_ssize_t row_min = w / 200 > 1 ? w / 200 : 1, col_min = h / 200 > 1 ? h / 200 : 1;
    Py_ssize_t top_row = -1, bottom_row = -1, left = -1, right = -1;
    Py_ssize_t *columns = calloc(w, sizeof(Py_ssize_t));
    if (columns == NULL) goto done;
    for (Py_ssize_t y = 0; y < h; y++) {
        Py_ssize_t count = 0;
        for (Py_ssize_t x = 0; x < w; x++) {
            int on = ink[y * w + x] > INK_THRESHOLD;
            count += on;
            columns[x] += on;
        }
        if (count >= row_min) {
            if (top_row < 0) top_row = y;
            bottom_row = y;
        }
    }
    for (Py_ssize_t x = 0; x < w; x++) {
        if (columns[x] >= col_min) {
            if (left < 0) left = x;
            right = x;
        }
    }
    free(columns);
    if (top_row < 0 || left < 0) {
        status = NO_INK;
        goto done;
    }
    Py_ssize_t ch = bottom_row - top_row + 1, cw = right - left + 1;
    for (Py_ssize_t y = 0; y < ch; y++)
        memcpy(work + y * cw, ink + (top_row + y) * w + left, sizeof(float) * cw);

    /* Strokes towards MNIST's width (digits.restroke). */
    Py_ssize_t side = ch > cw ? ch : cw, inked = 0;
    for (Py_ssize_t i = 0; i < ch * cw; i++) inked += work[i] > INK_THRESHOLD;
    double length = 2.5 * (double)side;
    double width = (double)inked / length;
    double target = TARGET_STROKE * (double)side;
    int radius = 0;
    Morph op = ERODE;
    if (width > THICK_STROKE * target) {
        radius = (int)((width - THICK_STROKE * target) / 2);
    } else {
        radius = (int)((target - width) / 2);
        op = DILATE;
    }
    int window = 2 * radius + 1 < MAX_STROKE_WINDOW ? 2 * radius + 1 : MAX_STROKE_WINDOW;
    Py_ssize_t pad = op == DILATE && radius >= 1 ? radius : 0;
    box->h = ch + 2 * pad;
    box->w = cw + 2 * pad;
    box->pixels = calloc(box->h * box->w, sizeof(float));
    if (box->pixels == NULL) goto done;
    if (radius < 1) {
        memcpy(box->pixels, work, sizeof(float) * ch * cw);
    } else {
        /* Dilation is padded first, so the tight crop does not clip it. */
        float *from = work;
        if (pad) {
            from = calloc(box->h * box->w, sizeof(float));
            if (from == NULL) {
                free(box->pixels);
                goto done;
            }
            for (Py_ssize_t y = 0; y < ch; y++)
                memcpy(from + (y + pad) * box->w + pad, work + y * cw, sizeof(float) * cw);
        }
        int failed = morph(op, from, box->h, box->w, window, 0, box->pixels) < 0;
        if (from != work) free(from);
        if (failed) {
            free(box->pixels);
            goto done;
        }
    }
    status = 0;
done:
    free(ink);
    free(work);
    free(scratch);
    free(keys);
    free(edge);
    return status;
}

/* digits.to_mnist's last steps and digits.center: clip to 0..1, scale the brightest pixel
   to 1, place by centre of mass (cv2.moments' float64 sums, Python's round half to even)
   in 28 x 28, and quantise as (v * 255 + 0.5) -> uint8. */
static void centre(const float *digit, Py_ssize_t h, Py_ssize_t w, unsigned char *out) {
    Py_ssize_t n = h * w;
    float *v = malloc(sizeof(float) * (n ? n : 1));
    float canvas[CANVAS * CANVAS] = {0};
    float brightest = 0.0f;
    for (Py_ssize_t i = 0; i < n; i++) {
        float p = digit[i] < 0.0f ? 0.0f : digit[i] > 1.0f ? 1.0f : digit[i];
        v[i] = p;
        if (i == 0 || p > brightest) brightest = p;
    }
    if (brightest > 0)
        for (Py_ssize_t i = 0; i < n; i++) v[i] = v[i] / brightest;
    double m00 = 0, m10 = 0, m01 = 0;
    for (Py_ssize_t y = 0; y < h; y++) {
        double x0 = 0, x1 = 0;
        for (Py_ssize_t x = 0; x < w; x++) {
            double p = v[y * w + x];
            x0 += p;
            x1 += (double)x * p;
        }
        m01 += (double)y * x0;
        m10 += x1;
        m00 += x0;
    }
    double cy = m00 != 0 ? m01 / m00 : (double)h / 2;
    double cx = m00 != 0 ? m10 / m00 : (double)w / 2;
    Py_ssize_t top = (Py_ssize_t)nearbyint(CANVAS / 2.0 - cy);
    Py_ssize_t left = (Py_ssize_t)nearbyint(CANVAS / 2.0 - cx);
    if (top > CANVAS - h) top = CANVAS - h;
    if (top < 0) top = 0;
    if (left > CANVAS - w) left = CANVAS - w;
    if (left < 0) left = 0;
    for (Py_ssize_t y = 0; y < h; y++)
        for (Py_ssize_t x = 0; x < w; x++) canvas[(top + y) * CANVAS + left + x] = v[y * w + x];
    for (int i = 0; i < CANVAS * CANVAS; i++) {
        float q = canvas[i] * 255.0f;
        q = q + 0.5f;
        out[i] = (unsigned char)q;
    }
    free(v);
}

/* Checks a float32 image argument: a C-contiguous buffer of h * w floats. */
static int image_arg(PyObject *obj, Py_buffer *view, Py_ssize_t h, Py_ssize_t w) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->itemsize != 4 || view->format == NULL || strcmp(view->format, "f") != 0 ||
        h < 1 || w < 1 || view->len != h * w * 4) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "expected a C-contiguous float32 image of h x w");
        return -1;
    }
    return 0;
}

static PyObject *py_ink_box(PyObject *self, PyObject *args) {
    PyObject *obj;
    Py_ssize_t h, w;
    Py_buffer view;
    Box box = {NULL, 0, 0};
    if (!PyArg_ParseTuple(args, "Onn", &obj, &h, &w) || image_arg(obj, &view, h, w) < 0)
        return NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS status = ink_box(view.buf, h, w, &box);
    Py_END_ALLOW_THREADS PyBuffer_Release(&view);
    if (status < 0) return PyErr_NoMemory();
    if (status > 0) return PyLong_FromLong(status);
    PyObject *pixels =
        PyByteArray_FromStringAndSize((const char *)box.pixels, box.h * box.w * sizeof(float));
    free(box.pixels);
    if (pixels == NULL) return NULL;
    return Py_BuildValue("(Nnn)", pixels, box.h, box.w);
}

static PyObject *py_centre(PyObject *self, PyObject *args) {
    PyObject *obj;
    Py_ssize_t h, w;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "Onn", &obj, &h, &w) || image_arg(obj, &view, h, w) < 0)
        return NULL;
    if (h > CANVAS || w > CANVAS) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "a digit to centre is at most 28 x 28");
        return NULL;
    }
    PyObject *out = PyByteArray_FromStringAndSize(NULL, CANVAS * CANVAS);
    if (out != NULL) {
        unsigned char *dst = (unsigned char *)PyByteArray_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS centre(view.buf, h, w, dst);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"ink_box", py_ink_box, METH_VARARGS,
     "ink_box(gray, h, w) -> (bytearray of float32 pixels, h, w), or 1 (no contrast) or 2 "
     "(no ink): digits.ink_map, crop_to_ink and restroke."},
    {"centre", py_centre, METH_VARARGS,
     "centre(digit, h, w) -> bytearray of 784: the 28 x 28 uint8 digit, centred by mass."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ink", "LeNet's preprocessing after the decode, compiled.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__ink(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "NO_CONTRAST", NO_CONTRAST) < 0 ||
        PyModule_AddIntConstant(m, "NO_INK", NO_INK) < 0 ||
        PyModule_AddObject(m, "INK_THRESHOLD", PyFloat_FromDouble(INK_THRESHOLD)) < 0 ||
        PyModule_AddObject(m, "FAINT", PyFloat_FromDouble(FAINT)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
