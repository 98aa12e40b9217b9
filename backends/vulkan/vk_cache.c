/* The Vulkan backend's pipeline cache on disk, so that a process pays the driver's shader compile
 * once per machine, not on every first call. One file per device and driver:
 *   $STILE_CACHE_DIR, else $XDG_CACHE_HOME/stile, else $HOME/.cache/stile
 *   /vulkan-<pipelineCacheUUID>-<vendorID>-<deviceID>-<driverVersion>.bin
 * holding a header of stile's own (magic, version, payload length, FNV-1a checksum) and then what
 * vkGetPipelineCacheData returned. A file that is short, corrupt, or made by another device or
 * driver (Vulkan's own header is checked too) is ignored with a log line and rewritten. Writes go
 * to a temporary file beside it and are renamed over it, so readers never see half a file.
 * STILE_VULKAN_CACHE=0 turns it off; an application's VkPipelineCache (stile_vulkan_context)
 * replaces it. Nothing here fails a call: a cache that cannot be read or written is only logged. */
#define _GNU_SOURCE      /* secure_getenv */
#define VK_NO_PROTOTYPES /* every Vulkan call through the table of vk_fns.h */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vk_internal.h"

#define MAGIC "STILEVKC"
enum { FILE_VERSION = 1, HEAD = 32, VK_HEAD = 32 }; /* ours: magic[8] version u32 pad u32 length u64 checksum u64 */
#define MAX_FILE ((size_t)1 << 30)

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint64_t get64(const unsigned char *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint32_t get32(const unsigned char *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }

/* The cache directory, or 0 when there is none (turned off, or no variable says where). */
static int cache_dir(char *dir, size_t size)
{
    const char *off = getenv("STILE_VULKAN_CACHE");
    if (off && strcmp(off, "0") == 0) return 0;
    const char *e;
    int n;
    if ((e = secure_getenv("STILE_CACHE_DIR")) && *e) n = snprintf(dir, size, "%s", e);
    else if ((e = secure_getenv("XDG_CACHE_HOME")) && *e) n = snprintf(dir, size, "%s/stile", e);
    else if ((e = secure_getenv("HOME")) && *e) n = snprintf(dir, size, "%s/.cache/stile", e);
    else return 0;
    return n > 0 && (size_t)n < size;
}

/* mkdir -p, 0700 for what it creates. */
static int make_dirs(char *dir)
{
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int rc = mkdir(dir, 0700);
        *p = '/';
        if (rc != 0 && errno != EEXIST) return -1;
    }
    return mkdir(dir, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* The initial data of a file if it is whole and made by this device and driver: its payload and
 * length, or NULL with why in reason. */
static unsigned char *read_valid(const char *path, const VkPhysicalDeviceProperties *props, size_t *len, char *reason, size_t size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(reason, size, "%s", errno == ENOENT ? "" : strerror(errno));
        return NULL;
    }
    unsigned char head[HEAD];
    unsigned char *data = NULL;
    if (fread(head, 1, HEAD, f) != HEAD || memcmp(head, MAGIC, 8) != 0) {
        snprintf(reason, size, "not a stile pipeline cache");
        goto done;
    }
    if (get32(head + 8) != FILE_VERSION) {
        snprintf(reason, size, "format version %u, not %u", get32(head + 8), FILE_VERSION);
        goto done;
    }
    const uint64_t n = get64(head + 16);
    if (n < VK_HEAD || n > MAX_FILE) {
        snprintf(reason, size, "payload length %llu out of range", (unsigned long long)n);
        goto done;
    }
    data = malloc((size_t)n);
    if (!data) {
        snprintf(reason, size, "out of memory");
        goto done;
    }
    int extra = EOF;
    if (fread(data, 1, (size_t)n, f) != n || (extra = fgetc(f)) != EOF) {
        snprintf(reason, size, "%s", extra != EOF ? "longer than its header says" : "truncated");
        goto bad;
    }
    if (fnv1a(data, (size_t)n) != get64(head + 24)) {
        snprintf(reason, size, "checksum mismatch (corrupt)");
        goto bad;
    }
    /* Vulkan's VkPipelineCacheHeaderVersionOne: headerSize, headerVersion, vendorID, deviceID, UUID */
    if (get32(data) < VK_HEAD || get32(data + 4) != VK_PIPELINE_CACHE_HEADER_VERSION_ONE || get32(data + 8) != props->vendorID ||
        get32(data + 12) != props->deviceID || memcmp(data + 16, props->pipelineCacheUUID, VK_UUID_SIZE) != 0) {
        snprintf(reason, size, "made by another device or driver");
        goto bad;
    }
    *len = (size_t)n;
    fclose(f);
    return data;
bad:
    free(data);
    data = NULL;
done:
    fclose(f);
    return data;
}

void vk_cache_open(vk_device *d)
{
    char dir[sizeof d->cache_path - 96];
    d->cache_path[0] = '\0';
    if (d->cache || !d->vk.vkCreatePipelineCache || !cache_dir(dir, sizeof dir)) return;
    VkPhysicalDeviceProperties props;
    d->vk.vkGetPhysicalDeviceProperties(d->phys, &props);
    char uuid[2 * VK_UUID_SIZE + 1];
    for (unsigned i = 0; i < VK_UUID_SIZE; i++) snprintf(uuid + 2 * i, 3, "%02x", props.pipelineCacheUUID[i]);
    snprintf(d->cache_path, sizeof d->cache_path, "%s/vulkan-%s-%x-%x-%x.bin", dir, uuid, props.vendorID, props.deviceID,
             props.driverVersion);
    char reason[128] = "";
    size_t len = 0;
    unsigned char *data = read_valid(d->cache_path, &props, &len, reason, sizeof reason);
    if (data) stile_log(STILE_LOG_INFO, "vulkan: pipeline cache: %zu bytes from %s", len, d->cache_path);
    else if (reason[0]) stile_log(STILE_LOG_WARN, "vulkan: pipeline cache %s ignored: %s (it will be rewritten)", d->cache_path, reason);
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO, .initialDataSize = len, .pInitialData = data};
    VkResult r = d->vk.vkCreatePipelineCache(d->dev, &ci, NULL, &d->cache);
    if (r != VK_SUCCESS && data) { /* the driver refused the data: start empty */
        stile_log(STILE_LOG_WARN, "vulkan: pipeline cache %s refused by the driver (VkResult %d): starting empty", d->cache_path, (int)r);
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        r = d->vk.vkCreatePipelineCache(d->dev, &ci, NULL, &d->cache);
    }
    free(data);
    if (r != VK_SUCCESS) {
        stile_log(STILE_LOG_WARN, "vulkan: no pipeline cache (VkResult %d): pipelines are compiled on each first use", (int)r);
        d->cache = VK_NULL_HANDLE;
        d->cache_path[0] = '\0';
        return;
    }
    d->own_cache = 1;
}

void vk_cache_save(vk_device *d)
{
    if (!d->own_cache || !d->cache_path[0]) return;
    size_t n = 0;
    if (d->vk.vkGetPipelineCacheData(d->dev, d->cache, &n, NULL) != VK_SUCCESS || n < VK_HEAD || n > MAX_FILE) return;
    unsigned char *buf = malloc(HEAD + n);
    if (!buf) return;
    VkResult r = d->vk.vkGetPipelineCacheData(d->dev, d->cache, &n, buf + HEAD);
    char dir[sizeof d->cache_path], tmp[sizeof d->cache_path + 16];
    snprintf(dir, sizeof dir, "%s", d->cache_path);
    *strrchr(dir, '/') = '\0';
    int fd = -1, err = 0;
    const char *why = NULL;
    if (r != VK_SUCCESS) why = "the driver gave no data";
    else if (make_dirs(dir) != 0) why = "cannot create its directory", err = errno;
    else if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", d->cache_path) >= (int)sizeof tmp) why = "path too long";
    else if ((fd = mkstemp(tmp)) < 0) why = "cannot create a file", err = errno;
    if (!why) {
        memcpy(buf, MAGIC, 8);
        put32(buf + 8, FILE_VERSION);
        put32(buf + 12, 0);
        put64(buf + 16, n);
        put64(buf + 24, fnv1a(buf + HEAD, n));
        size_t done = 0;
        while (done < HEAD + n) {
            ssize_t w = write(fd, buf + done, HEAD + n - done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            done += (size_t)w;
        }
        if (done != HEAD + n || fsync(fd) != 0) why = "write failed", err = errno;
        if (close(fd) != 0 && !why) why = "write failed", err = errno;
        if (!why && rename(tmp, d->cache_path) != 0) why = "cannot rename it into place", err = errno;
        if (why) unlink(tmp);
    }
    if (why) stile_log(STILE_LOG_WARN, "vulkan: pipeline cache not saved to %s: %s%s%s", d->cache_path, why, err ? ": " : "",
                       err ? strerror(err) : "");
    else stile_log(STILE_LOG_DEBUG, "vulkan: pipeline cache: %zu bytes saved to %s", n, d->cache_path);
    free(buf);
}

void vk_cache_close(vk_device *d)
{
    if (d->own_cache && d->cache) d->vk.vkDestroyPipelineCache(d->dev, d->cache, NULL);
    if (d->own_cache) d->cache = VK_NULL_HANDLE;
    d->own_cache = 0;
}
