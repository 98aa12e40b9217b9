/* Buffers: device memory through the backend's allocator and copies, checked ranges. */
#include <stdlib.h>

#include "stile_internal.h"

stile_status stile_buffer_create(stile_device *device, size_t bytes, stile_buffer **out)
{
    if (out) *out = NULL;
    if (!device || !out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_buffer_create: %s is NULL", device ? "out" : "device");
    if (bytes == 0) return stile_fail(STILE_ERR_INVALID_SIZE, "stile_buffer_create: bytes=0: must be >= 1");
    stile_buffer *b = calloc(1, sizeof *b);
    if (!b) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for a buffer");
    const stile_device *previous = stile_log_enter(device);
    stile_status rc = device->backend->buffer_alloc(device->impl, bytes, &b->ptr);
    stile_log_leave(previous);
    if (rc != STILE_OK) {
        free(b);
        return rc;
    }
    b->device = device;
    b->bytes = bytes;
    *out = b;
    return STILE_OK;
}

stile_status stile_buffer_adopt(stile_device *device, void *ptr, size_t bytes, stile_buffer **out)
{
    stile_buffer *b = calloc(1, sizeof *b);
    if (!b) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory for a buffer");
    b->device = device;
    b->ptr = ptr;
    b->bytes = bytes;
    *out = b;
    return STILE_OK;
}

void stile_buffer_destroy(stile_buffer **buffer)
{
    if (!buffer || !*buffer) return;
    const stile_device *previous = stile_log_enter((*buffer)->device);
    (*buffer)->device->backend->buffer_free((*buffer)->device->impl, (*buffer)->ptr);
    stile_log_leave(previous);
    free(*buffer);
    *buffer = NULL;
}

static stile_status copy(const stile_buffer *b, size_t offset, void *host, size_t bytes, int to_device, const char *what)
{
    if (!b || (!host && bytes)) return stile_fail(STILE_ERR_NULL_ARGUMENT, "%s: %s is NULL", what, b ? "host pointer" : "buffer");
    if (offset > b->bytes || bytes > b->bytes - offset)
        return stile_fail(STILE_ERR_OUT_OF_RANGE, "%s: bytes [%zu, %zu) outside the buffer's %zu", what, offset, offset + bytes,
                          b->bytes);
    if (bytes == 0) return STILE_OK;
    char *dev = (char *)b->ptr + offset;
    const stile_device *previous = stile_log_enter(b->device);
    stile_status st = b->device->backend->buffer_copy(b->device->impl, to_device ? dev : host, to_device ? host : dev, bytes, to_device);
    stile_log_leave(previous);
    return st;
}

stile_status stile_buffer_upload(stile_buffer *b, size_t offset, const void *src, size_t bytes)
{
    return copy(b, offset, (void *)src, bytes, 1, "stile_buffer_upload");
}

stile_status stile_buffer_download(const stile_buffer *b, size_t offset, void *dst, size_t bytes)
{
    return copy(b, offset, dst, bytes, 0, "stile_buffer_download");
}

void *stile_buffer_data(const stile_buffer *b) { return b ? b->ptr : NULL; }
size_t stile_buffer_size(const stile_buffer *b) { return b ? b->bytes : 0; }
