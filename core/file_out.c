/* Output files all or nothing (see file_out.h): what a path names decides how it is written; files
 * are staged as temporaries beside their target and renamed at commit, FIFOs and devices written through. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_out.h"

enum { MAX_LINKS = 40 /* the kernel's own limit before ELOOP */ };

typedef struct staged {
    char *path;           /* as given: for messages, and opened as is for a write-through */
    char *target;         /* a file: its final name after symlinks; NULL for a write-through */
    char *tmp;            /* a file: the temporary renamed over target at commit */
    dev_t dev;            /* a file that existed: its identity, to catch one target named twice */
    ino_t ino;
    unsigned char *bytes; /* a write-through: the contents, kept until commit */
    size_t size;
    int trunc;            /* a write-through to a regular file (see classify) */
} staged;

struct stile_out_set {
    staged *s;
    int n, cap;
    int committed;
};

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static stile_status fail(char *err, size_t n, stile_status st, const char *fmt, ...)
{
    if (err && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
    }
    return st;
}

static stile_status fail_errno(char *err, size_t n, const char *path, int e)
{
    return fail(err, n, e == ENOMEM ? STILE_ERR_OUT_OF_MEMORY : STILE_ERR_IO, "%s: %s", path, strerror(e ? e : EIO));
}

/* The directory holding name: "." for a bare name, "/" for one in the root. */
static char *dir_of(const char *name)
{
    const char *slash = strrchr(name, '/');
    if (!slash) return strdup(".");
    size_t len = slash == name ? 1 : (size_t)(slash - name);
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, name, len);
        d[len] = 0;
    }
    return d;
}

/* path's final name through symlinks (followed by hand so that a dangling link names the file to
 * create); path itself when it is no symlink or does not exist. NULL with *e set on failure. */
static char *final_name(const char *path, int *e)
{
    char *cur = strdup(path);
    for (int hops = 0; cur; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) return cur; /* the caller looks again and reports */
        if (hops == MAX_LINKS) {
            free(cur);
            *e = ELOOP;
            return NULL;
        }
        size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 256; /* /proc's links report size 0 */
        char *link = NULL;
        ssize_t len;
        for (;;) {
            char *grown = realloc(link, cap);
            if (!grown) { len = -1; errno = ENOMEM; break; }
            link = grown;
            if ((len = readlink(cur, link, cap)) < 0 || (size_t)len < cap) break;
            cap *= 2;
        }
        if (len < 0) {
            *e = errno;
            free(link);
            free(cur);
            return NULL;
        }
        link[len] = 0;
        char *next = link;
        if (link[0] != '/') { /* relative to the link's own directory */
            const char *slash = strrchr(cur, '/');
            size_t dl = slash ? (size_t)(slash - cur) + 1 : 0;
            next = malloc(dl + (size_t)len + 1);
            if (next) {
                memcpy(next, cur, dl);
                memcpy(next + dl, link, (size_t)len + 1);
            }
            free(link);
        }
        free(cur);
        cur = next;
    }
    *e = ENOMEM;
    return NULL;
}

typedef struct where {
    int direct;     /* write through to path, at commit */
    int trunc;      /* write-through to a regular file: truncate it */
    char *target;   /* else: the final name, owned */
    int exists;     /* target exists: st describes it */
    struct stat st;
} where;

static stile_status classify(const char *path, where *w, char *err, size_t en)
{
    memset(w, 0, sizeof *w);
    struct stat st;
    const int found = stat(path, &st) == 0;
    if (!found && errno != ENOENT) return fail_errno(err, en, path, errno);
    if (found) {
        if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
            w->direct = 1;
            return STILE_OK;
        }
        if (S_ISDIR(st.st_mode)) return fail(err, en, STILE_ERR_IO, "%s: is a directory", path);
        if (!S_ISREG(st.st_mode))
            return fail(err, en, STILE_ERR_IO, "%s: is a %s; outputs go to regular files, FIFOs and character devices", path,
                        S_ISSOCK(st.st_mode) ? "socket" : S_ISBLK(st.st_mode) ? "block device" : "special file");
    }
    int e = 0;
    char *t = final_name(path, &e);
    if (!t) return fail_errno(err, en, path, e);
    struct stat ts;
    if (lstat(t, &ts) == 0) {
        if (found && S_ISREG(ts.st_mode) && ts.st_dev == st.st_dev && ts.st_ino == st.st_ino) {
            w->target = t;
            w->exists = 1;
            w->st = ts;
            return STILE_OK;
        }
        free(t);
        if (!found) return fail(err, en, STILE_ERR_IO, "%s: changed while being looked at", path);
        /* A regular file no name leads to (a /proc/self/fd link to a deleted file): only writing through is possible. */
        w->direct = w->trunc = 1;
        return STILE_OK;
    }
    e = errno;
    if (found || e != ENOENT) {
        free(t);
        if (found) { /* as above: reachable only through the link */
            w->direct = w->trunc = 1;
            return STILE_OK;
        }
        return fail_errno(err, en, path, e);
    }
    w->target = t; /* a new name, or a dangling symlink's target */
    return STILE_OK;
}

static int write_all(int fd, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n) {
        ssize_t w = write(fd, p, n < ((size_t)1 << 30) ? n : (size_t)1 << 30);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The mode open(2) gives a new file: 0666 less the umask, read from /proc because umask(2) reads it
 * only by changing it, which races with other threads creating files. */
static mode_t new_file_mode(void)
{
    unsigned mask = 022; /* without /proc: the usual umask */
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "Umask: %o", &mask) == 1) break;
        fclose(f);
    }
    return (mode_t)(0666 & ~(mask & 0777));
}

stile_status stile_out_check(const char *path, char *err, size_t en)
{
    if (!path || !*path) return fail(err, en, STILE_ERR_INVALID_ARGUMENT, "an output path is empty");
    where w;
    stile_status st = classify(path, &w, err, en);
    if (st != STILE_OK) return st;
    if (w.direct) return access(path, W_OK) == 0 ? STILE_OK : fail_errno(err, en, path, errno);
    char *dir = dir_of(w.target);
    if (!dir) {
        free(w.target);
        return fail_errno(err, en, path, ENOMEM);
    }
    /* the temporary goes beside the target, so its directory must take new files */
    struct stat ds;
    if (stat(dir, &ds) != 0) st = fail(err, en, STILE_ERR_IO, "%s: directory %s: %s", path, dir, strerror(errno));
    else if (!S_ISDIR(ds.st_mode)) st = fail(err, en, STILE_ERR_IO, "%s: %s is not a directory", path, dir);
    else if (access(dir, W_OK | X_OK) != 0) st = fail(err, en, STILE_ERR_IO, "%s: cannot create files in %s: %s", path, dir, strerror(errno));
    free(dir);
    free(w.target);
    return st;
}

stile_status stile_out_set_create(stile_out_set **out)
{
    if (!out) return STILE_ERR_NULL_ARGUMENT;
    *out = calloc(1, sizeof **out);
    return *out ? STILE_OK : STILE_ERR_OUT_OF_MEMORY;
}

static void drop(staged *s)
{
    if (s->tmp) unlink(s->tmp);
    free(s->path);
    free(s->target);
    free(s->tmp);
    free(s->bytes);
    memset(s, 0, sizeof *s);
}

void stile_out_set_destroy(stile_out_set **set)
{
    if (!set || !*set) return;
    for (int i = 0; i < (*set)->n; i++) drop(&(*set)->s[i]);
    free((*set)->s);
    free(*set);
    *set = NULL;
}

/* Write the pieces into a new temporary beside w->target, with the target's mode (and owner). */
static stile_status stage_file(staged *s, const where *w, const stile_out_piece *pieces, int np, char *err, size_t en)
{
    char *dir = dir_of(w->target);
    if (!dir) return fail_errno(err, en, s->path, ENOMEM);
    const char *slash = strrchr(w->target, '/'), *base = slash ? slash + 1 : w->target;
    const size_t dl = strlen(dir), bl = strlen(base) < 200 ? strlen(base) : 200; /* room for the suffix within NAME_MAX */
    s->tmp = malloc(dl + bl + 16);
    if (!s->tmp) {
        free(dir);
        return fail_errno(err, en, s->path, ENOMEM);
    }
    snprintf(s->tmp, dl + bl + 16, "%s%s.%.*s.XXXXXX", dir, dir[dl - 1] == '/' ? "" : "/", (int)bl, base);
    free(dir);
    int fd = mkstemp(s->tmp);
    if (fd < 0) {
        int e = errno;
        free(s->tmp);
        s->tmp = NULL;
        return fail_errno(err, en, s->path, e);
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    mode_t mode = new_file_mode();
    if (w->exists) {
        mode = w->st.st_mode & 07777;
        /* A file of another owner (we are root) stays theirs where the system lets us; else it becomes
         * ours, as it would with any editor's save. Before chmod, as chown clears set-id bits. */
        if (w->st.st_uid != geteuid() || w->st.st_gid != getegid()) {
            if (fchown(fd, w->st.st_uid, w->st.st_gid) != 0) { /* not allowed: ours it is */ }
        }
    }
    int ok = fchmod(fd, mode) == 0;
    for (int i = 0; ok && i < np; i++) ok = !pieces[i].size || write_all(fd, pieces[i].data, pieces[i].size) == 0;
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        unlink(s->tmp);
        free(s->tmp);
        s->tmp = NULL;
        return fail_errno(err, en, s->path, e);
    }
    return STILE_OK;
}

stile_status stile_out_stage(stile_out_set *set, const char *path, const stile_out_piece *pieces, int np, char *err, size_t en)
{
    if (!set || !path || (np && !pieces) || np < 0) return fail(err, en, STILE_ERR_NULL_ARGUMENT, "stile_out_stage: bad arguments");
    if (set->committed) return fail(err, en, STILE_ERR_INVALID_ARGUMENT, "%s: staged after the outputs were committed", path);
    if (!*path) return fail(err, en, STILE_ERR_INVALID_ARGUMENT, "an output path is empty");
    if (set->n == set->cap) {
        int cap = set->cap ? 2 * set->cap : 4;
        staged *g = realloc(set->s, (size_t)cap * sizeof *g);
        if (!g) return fail_errno(err, en, path, ENOMEM);
        set->s = g;
        set->cap = cap;
    }
    where w;
    stile_status st = classify(path, &w, err, en);
    if (st != STILE_OK) return st;
    staged s = {.path = strdup(path), .target = w.target, .trunc = w.trunc};
    if (!s.path) {
        drop(&s);
        return fail_errno(err, en, path, ENOMEM);
    }
    if (w.exists) {
        s.dev = w.st.st_dev;
        s.ino = w.st.st_ino;
    }
    /* One file named twice (directly, or through links) would keep only the last output. */
    for (int i = 0; !w.direct && i < set->n; i++) {
        const staged *o = &set->s[i];
        if (o->target && (strcmp(o->target, s.target) == 0 || (w.exists && o->ino && o->dev == s.dev && o->ino == s.ino))) {
            st = fail(err, en, STILE_ERR_INVALID_ARGUMENT, "%s: the same file as the output %s", path, o->path);
            drop(&s);
            return st;
        }
    }
    if (w.direct) {
        size_t total = 0;
        for (int i = 0; i < np; i++) {
            if (total + pieces[i].size < total) {
                drop(&s);
                return fail_errno(err, en, path, ENOMEM);
            }
            total += pieces[i].size;
        }
        s.bytes = malloc(total ? total : 1);
        if (!s.bytes) {
            drop(&s);
            return fail_errno(err, en, path, ENOMEM);
        }
        for (int i = 0; i < np; i++)
            if (pieces[i].size) {
                memcpy(s.bytes + s.size, pieces[i].data, pieces[i].size);
                s.size += pieces[i].size;
            }
    } else if ((st = stage_file(&s, &w, pieces, np, err, en)) != STILE_OK) {
        drop(&s);
        return st;
    }
    set->s[set->n++] = s;
    return STILE_OK;
}

stile_status stile_out_commit(stile_out_set *set, char *err, size_t en)
{
    if (!set) return fail(err, en, STILE_ERR_NULL_ARGUMENT, "stile_out_commit: set is NULL");
    if (set->committed) return fail(err, en, STILE_ERR_INVALID_ARGUMENT, "the outputs were committed already");
    set->committed = 1;
    stile_status st = STILE_OK;
    /* First what fails in practice (a full device, a FIFO's reader gone), then the renames. */
    for (int i = 0; st == STILE_OK && i < set->n; i++) {
        staged *s = &set->s[i];
        if (s->target) continue;
        int fd = open(s->path, O_WRONLY | O_NOCTTY | O_CLOEXEC | (s->trunc ? O_TRUNC : 0));
        if (fd < 0) {
            st = fail_errno(err, en, s->path, errno);
            break;
        }
        int ok = write_all(fd, s->bytes, s->size) == 0, e = errno;
        if (close(fd) != 0 && ok) {
            ok = 0;
            e = errno;
        }
        if (!ok) st = fail_errno(err, en, s->path, e);
    }
    for (int i = 0; st == STILE_OK && i < set->n; i++) {
        staged *s = &set->s[i];
        if (!s->target) continue;
        if (rename(s->tmp, s->target) != 0) {
            st = fail_errno(err, en, s->path, errno);
            break;
        }
        free(s->tmp);
        s->tmp = NULL; /* committed: no longer ours to remove */
    }
    for (int i = 0; i < set->n; i++) drop(&set->s[i]); /* what is left of a failure */
    set->n = 0;
    return st;
}

stile_status stile_out_write(const char *path, const stile_out_piece *pieces, int np, char *err, size_t en)
{
    stile_out_set *set = NULL;
    stile_status st = stile_out_set_create(&set);
    if (st != STILE_OK) return fail_errno(err, en, path ? path : "(null)", ENOMEM);
    if ((st = stile_out_stage(set, path, pieces, np, err, en)) == STILE_OK) st = stile_out_commit(set, err, en);
    stile_out_set_destroy(&set);
    return st;
}
