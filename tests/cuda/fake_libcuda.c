/*
 * A stand-in for the NVIDIA driver (libcuda.so.1), for proving the timing path up to the driver
 * boundary on machines without a GPU. The worker loads it through cudarc's dynamic loading exactly
 * as it would the real driver. It answers the driver calls the worker makes, checks what it can
 * (the kernel named must be an .entry of the PTX loaded; parameters are read with the sizes the
 * PTX declares; a launch must have the block size the entry's .reqntid requires, and at most 48 KiB
 * of dynamic shared memory unless cuFuncSetAttribute raised the function's limit, up to the 227 KiB
 * an H100 allows; the real driver refuses both with CUDA_ERROR_INVALID_VALUE) and appends every
 * call, as a JSON line, to the file named by FAKE_CUDA_LOG.
 *
 * Event times are scripted: the time between two recorded events is the number of launches
 * between them times the next value of FAKE_CUDA_MS (comma-separated milliseconds per launch,
 * used in turn; default 0.05). With FAKE_CUDA_US_PER_BLOCK set instead, a launch takes that many
 * microseconds per block of its grid, so that launches of more blocks take longer. It proves the
 * plumbing, not GPU numbers.
 *
 * Other knobs: FAKE_CUDA_DEVICES (default 1), FAKE_CUDA_PTX_TOO_NEW (module load fails as with a
 * driver older than the PTX), FAKE_CUDA_FAIL_LAUNCH=N (the Nth launch fails with an illegal
 * address), FAKE_CUDA_HANG (synchronizing never returns: a kernel in an endless loop).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int CUresult;
enum {
  SUCCESS = 0,
  ERROR_INVALID_VALUE = 1,
  ERROR_NO_DEVICE = 100,
  ERROR_INVALID_HANDLE = 400,
  ERROR_NOT_FOUND = 500,
  ERROR_ILLEGAL_ADDRESS = 700,
  ERROR_UNSUPPORTED_PTX_VERSION = 222,
};

static FILE *log_file(void) {
  static FILE *file;
  if (!file) {
    const char *path = getenv("FAKE_CUDA_LOG");
    file = path ? fopen(path, "a") : NULL;
    if (file) setvbuf(file, NULL, _IOLBF, 0);
  }
  return file;
}

static void record(const char *format, ...) {
  FILE *file = log_file();
  if (!file) return;
  va_list args;
  va_start(args, format);
  vfprintf(file, format, args);
  va_end(args);
  fputc('\n', file);
}

/* ---- device ---- */

CUresult cuInit(unsigned flags) {
  record("{\"call\":\"cuInit\",\"flags\":%u}", flags);
  return SUCCESS;
}

CUresult cuDriverGetVersion(int *version) {
  *version = 13000;
  return SUCCESS;
}

CUresult cuDeviceGetCount(int *count) {
  const char *devices = getenv("FAKE_CUDA_DEVICES");
  *count = devices ? atoi(devices) : 1;
  return SUCCESS;
}

CUresult cuDeviceGet(int *device, int ordinal) {
  if (ordinal != 0) return ERROR_INVALID_VALUE;
  *device = 0;
  return SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, int device) {
  (void)device;
  snprintf(name, (size_t)len, "tensorlens stand-in GPU");
  return SUCCESS;
}

/* Attributes of an H100 SXM-like part, enough for peak bandwidth and L2 size. */
CUresult cuDeviceGetAttribute(int *value, int attribute, int device) {
  (void)device;
  switch (attribute) {
    case 75: *value = 9; break;          /* compute capability major */
    case 76: *value = 0; break;          /* minor */
    case 13: *value = 1980000; break;    /* SM clock, kHz */
    case 36: *value = 2619000; break;    /* memory clock, kHz */
    case 37: *value = 5120; break;       /* bus width, bits */
    case 38: *value = 52428800; break;   /* L2, bytes */
    default: *value = 0;
  }
  record("{\"call\":\"cuDeviceGetAttribute\",\"attribute\":%d,\"value\":%d}", attribute, *value);
  return SUCCESS;
}

static int context_token;

CUresult cuDevicePrimaryCtxRetain(void **context, int device) {
  (void)device;
  *context = &context_token;
  record("{\"call\":\"cuDevicePrimaryCtxRetain\"}");
  return SUCCESS;
}

CUresult cuCtxSetCurrent(void *context) {
  return context == &context_token ? SUCCESS : ERROR_INVALID_HANDLE;
}

/* ---- modules ---- */

typedef struct {
  char *ptx;
} Module;

typedef struct {
  char name[256];
  int param_count;
  int param_bytes[64];
  char param_types[64][8];
  int reqntid; /* threads the entry requires (.reqntid), 0 when it says nothing */
  int max_dynamic_shared;
} Function;

static unsigned long hash(const char *text) {
  unsigned long h = 1469598103934665603UL;
  for (; *text; ++text) h = (h ^ (unsigned char)*text) * 1099511628211UL;
  return h;
}

CUresult cuModuleLoadDataEx(void **module, const void *image, unsigned count, int *options, void **values) {
  const char *ptx = image;
  record("{\"call\":\"cuModuleLoadDataEx\",\"ptx_bytes\":%zu,\"ptx_hash\":%lu,\"has_version\":%s,\"options\":%u}",
         strlen(ptx), hash(ptx), strstr(ptx, ".version") ? "true" : "false", count);
  if (getenv("FAKE_CUDA_PTX_TOO_NEW")) {
    for (unsigned i = 0; i < count; ++i) {
      if (options[i] == 5 /* CU_JIT_ERROR_LOG_BUFFER */) {
        snprintf((char *)values[i], 128, "ptxas fatal   : Unsupported .version; current version is '8.0'");
      }
    }
    return ERROR_UNSUPPORTED_PTX_VERSION;
  }
  if (!strstr(ptx, ".entry")) return 218; /* CUDA_ERROR_INVALID_PTX */
  Module *loaded = malloc(sizeof *loaded);
  loaded->ptx = strdup(ptx);
  *module = loaded;
  return SUCCESS;
}

/* Reads `.entry name(` and its `.param .u64 x,` lines from the PTX. */
CUresult cuModuleGetFunction(void **function, void *module, const char *name) {
  Module *loaded = module;
  char needle[300];
  snprintf(needle, sizeof needle, ".entry %s(", name);
  const char *entry = strstr(loaded->ptx, needle);
  record("{\"call\":\"cuModuleGetFunction\",\"name\":\"%s\",\"found\":%s}", name, entry ? "true" : "false");
  if (!entry) return ERROR_NOT_FOUND;
  Function *f = calloc(1, sizeof *f);
  snprintf(f->name, sizeof f->name, "%s", name);
  const char *cursor = entry + strlen(needle);
  const char *end = strchr(cursor, ')');
  while (cursor && cursor < end && f->param_count < 64) {
    const char *param = strstr(cursor, ".param");
    if (!param || param > end) break;
    const char *type = param + strlen(".param");
    while (*type == ' ' || *type == '\t') ++type;
    /* `.u64`, `.u32`, `.f32`, `.align 8 .b8 name[16]` */
    int bytes = 0;
    char kind[8] = "";
    if (sscanf(type, ".%7[a-z]%d", kind, &bytes) == 2 && strcmp(kind, "align") != 0) {
      bytes /= 8;
    } else {
      const char *open = strchr(type, '[');
      bytes = open && open < end ? atoi(open + 1) : 0;
      snprintf(kind, sizeof kind, "b");
    }
    f->param_bytes[f->param_count] = bytes;
    snprintf(f->param_types[f->param_count], 8, "%s", kind);
    f->param_count++;
    cursor = type;
  }
  /* `.reqntid 128` or `.reqntid 128, 1, 1` between the parameters and the body. */
  const char *body = end ? strchr(end, '{') : NULL;
  const char *reqntid = end ? strstr(end, ".reqntid") : NULL;
  if (reqntid && (!body || reqntid < body)) {
    int x = 1, y = 1, z = 1;
    if (sscanf(reqntid, ".reqntid %d , %d , %d", &x, &y, &z) >= 1) f->reqntid = x * y * z;
  }
  f->max_dynamic_shared = 48 * 1024;
  *function = f;
  return SUCCESS;
}

/* Only CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES (8), the one the worker sets. */
CUresult cuFuncSetAttribute(void *function, int attribute, int value) {
  Function *f = function;
  record("{\"call\":\"cuFuncSetAttribute\",\"name\":\"%s\",\"attribute\":%d,\"value\":%d}", f->name, attribute,
         value);
  if (attribute != 8 || value < 0 || value > 227 * 1024) return ERROR_INVALID_VALUE;
  f->max_dynamic_shared = value;
  return SUCCESS;
}

/* ---- memory ---- */

static unsigned long long next_address = 0x7f0000000000ULL;

CUresult cuMemAlloc_v2(unsigned long long *pointer, size_t bytes) {
  *pointer = next_address;
  next_address += (bytes + 255) / 256 * 256 + 256;
  record("{\"call\":\"cuMemAlloc\",\"bytes\":%zu,\"pointer\":%llu}", bytes, *pointer);
  return SUCCESS;
}

CUresult cuMemFree_v2(unsigned long long pointer) {
  record("{\"call\":\"cuMemFree\",\"pointer\":%llu}", pointer);
  return SUCCESS;
}

CUresult cuMemcpyHtoD_v2(unsigned long long pointer, const void *source, size_t bytes) {
  float first = 0;
  if (bytes >= 4) memcpy(&first, source, 4);
  record("{\"call\":\"cuMemcpyHtoD\",\"pointer\":%llu,\"bytes\":%zu,\"first_f32\":%g}", pointer, bytes, first);
  return SUCCESS;
}

CUresult cuMemsetD8_v2(unsigned long long pointer, unsigned char value, size_t bytes) {
  record("{\"call\":\"cuMemsetD8\",\"pointer\":%llu,\"value\":%u,\"bytes\":%zu}", pointer, value, bytes);
  return SUCCESS;
}

/* ---- launches and events ---- */

static long launches;
/* Microseconds of scripted work launched so far, with FAKE_CUDA_US_PER_BLOCK. */
static double launched_us;

CUresult cuLaunchKernel(void *function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void *stream, void **params, void **extra) {
  (void)stream;
  (void)extra;
  Function *f = function;
  launches++;
  const char *per_block = getenv("FAKE_CUDA_US_PER_BLOCK");
  if (per_block) launched_us += atof(per_block) * (double)gx * gy * gz;
  const char *fail = getenv("FAKE_CUDA_FAIL_LAUNCH");
  if (fail && launches == atol(fail)) {
    record("{\"call\":\"cuLaunchKernel\",\"failed\":700}");
    return ERROR_ILLEGAL_ADDRESS;
  }
  if ((f->reqntid && bx * by * bz != (unsigned)f->reqntid) || (int)shared > f->max_dynamic_shared) {
    record("{\"call\":\"cuLaunchKernel\",\"failed\":1,\"block\":[%u,%u,%u],\"reqntid\":%d,\"shared\":%u,"
           "\"max_dynamic_shared\":%d}",
           bx, by, bz, f->reqntid, shared, f->max_dynamic_shared);
    return ERROR_INVALID_VALUE;
  }
  /* Only the first few launches are written out whole; the rest are counted. */
  if (launches > 3) return SUCCESS;
  char values[4096];
  size_t used = 0;
  for (int i = 0; i < f->param_count && used < sizeof values - 128; ++i) {
    unsigned long long value = 0;
    int bytes = f->param_bytes[i];
    if (bytes <= 8) memcpy(&value, params[i], (size_t)bytes);
    double as_float = 0;
    if (strcmp(f->param_types[i], "f") == 0 && bytes == 4) {
      float single;
      memcpy(&single, params[i], 4);
      as_float = single;
    } else if (strcmp(f->param_types[i], "f") == 0 && bytes == 8) {
      memcpy(&as_float, params[i], 8);
    }
    used += (size_t)snprintf(values + used, sizeof values - used,
                             "%s{\"type\":\"%s\",\"bytes\":%d,\"value\":%llu,\"float\":%g}", i ? "," : "",
                             f->param_types[i], bytes, value, as_float);
  }
  record("{\"call\":\"cuLaunchKernel\",\"name\":\"%s\",\"grid\":[%u,%u,%u],\"block\":[%u,%u,%u],\"shared\":%u,"
         "\"params\":[%s]}",
         f->name, gx, gy, gz, bx, by, bz, shared, values);
  return SUCCESS;
}

typedef struct {
  long launches_at_record;
  double us_at_record;
} Event;

CUresult cuEventCreate(void **event, unsigned flags) {
  (void)flags;
  *event = calloc(1, sizeof(Event));
  return SUCCESS;
}

CUresult cuEventRecord(void *event, void *stream) {
  (void)stream;
  ((Event *)event)->launches_at_record = launches;
  ((Event *)event)->us_at_record = launched_us;
  return SUCCESS;
}

CUresult cuEventSynchronize(void *event) {
  (void)event;
  if (getenv("FAKE_CUDA_HANG")) {
    for (;;) pause();
  }
  return SUCCESS;
}

CUresult cuEventDestroy_v2(void *event) {
  free(event);
  return SUCCESS;
}

CUresult cuCtxSynchronize(void) {
  if (getenv("FAKE_CUDA_HANG")) {
    for (;;) pause();
  }
  return SUCCESS;
}

static long elapsed_calls;

CUresult cuEventElapsedTime_v2(float *milliseconds, void *start, void *end) {
  const char *script = getenv("FAKE_CUDA_MS");
  double per_launch[256];
  int count = 0;
  if (script) {
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", script);
    for (char *token = strtok(copy, ","); token && count < 256; token = strtok(NULL, ",")) per_launch[count++] = atof(token);
  }
  if (count == 0) per_launch[count++] = 0.05;
  long between = ((Event *)end)->launches_at_record - ((Event *)start)->launches_at_record;
  double ms = per_launch[elapsed_calls % count] * (double)between;
  if (getenv("FAKE_CUDA_US_PER_BLOCK")) ms = (((Event *)end)->us_at_record - ((Event *)start)->us_at_record) / 1000.0;
  elapsed_calls++;
  *milliseconds = (float)ms;
  record("{\"call\":\"cuEventElapsedTime\",\"launches\":%ld,\"ms\":%.9g}", between, ms);
  return SUCCESS;
}

CUresult cuGetErrorString(CUresult error, const char **text) {
  switch (error) {
    case ERROR_ILLEGAL_ADDRESS: *text = "an illegal memory access was encountered"; break;
    case ERROR_UNSUPPORTED_PTX_VERSION: *text = "the provided PTX was compiled with an unsupported toolchain."; break;
    case ERROR_NOT_FOUND: *text = "named symbol not found"; break;
    default: *text = "unknown error";
  }
  return SUCCESS;
}

/* NVRTC asks the driver, when one is loaded, for private tables; the stand-in has none to give. */
CUresult cuGetExportTable(const void **table, const void *id) {
  (void)id;
  *table = NULL;
  record("{\"call\":\"cuGetExportTable\"}");
  return 801; /* CUDA_ERROR_NOT_SUPPORTED */
}
