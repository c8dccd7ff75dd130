/*
 * dicom_fleet: a lean fleet of simulated DICOM endpoints on loopback addresses,
 * for pacsaudit's scan benchmark (bench/scan_bench.py).
 *
 * One single-threaded, non-blocking epoll process listens on N consecutive
 * loopback addresses (one port) and gives each address a behaviour:
 *
 *   accept-any  A-ASSOCIATE-RQ -> A-ASSOCIATE-AC for any called/calling AE and every
 *               proposed presentation context (implicit VR little endian);
 *               C-ECHO-RQ -> C-ECHO-RSP status 0; other DIMSE-C requests -> 0x0211;
 *               A-RELEASE-RQ -> A-RELEASE-RP then close; A-ABORT -> close.
 *   tarpit      accept the connection, read and discard, never reply.
 *   malformed   after a complete PDU, reply with a type-0x02 PDU header claiming
 *               0xFFFFFFF0 bytes, then close.
 *   closed      nothing listens on the address (the kernel answers RST).
 *
 * It is written from DICOM PS3.8 (upper layer PDUs, section 9.3) and PS3.7
 * (command set encoding); it is a test fixture, not a PACS. Being compiled C, it
 * costs a few microseconds of CPU per association, so on a 2-core machine the
 * fleet does not cap the scanner being measured.
 *
 * Build:  cc -O2 -Wall -Wextra -o bench/fleet/dicom_fleet bench/fleet/dicom_fleet.c
 * Run:    dicom_fleet --base 127.78.0.1 --port 11112 \
 *             --fleet accept-any:200 --fleet tarpit:20 --map fleet.json
 *
 * Addresses are assigned consecutively from --base in --fleet order, skipping
 * addresses whose last octet is 0 or 255. Every address must be in 127.0.0.0/8.
 * Once all listeners are bound, the address->mode map is written to --map and
 * "READY <n>" is printed on stdout. The process exits on SIGTERM/SIGINT or after
 * --lifetime seconds; connections idle for --idle-timeout seconds are dropped.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RECV_TOTAL 65536 /* a connection that sends more is dropped */
#define MAX_OUT 4096         /* every reply we build fits in this */
#define MAX_CMD 8192         /* bound on a reassembled DIMSE command set */
#define MAX_GROUPS 64
#define MAX_ADDRS 60000
#define MAX_EVENTS 256

enum mode { MODE_ACCEPT_ANY = 0, MODE_TARPIT, MODE_MALFORMED, MODE_CLOSED, MODE_COUNT };
static const char *MODE_NAMES[MODE_COUNT] = {"accept-any", "tarpit", "malformed", "closed"};

enum state { ST_AWAIT_RQ = 0, ST_ESTABLISHED, ST_CLOSING };

/* PS3.8 9.3.1 PDU types */
enum {
    PDU_ASSOC_RQ = 0x01,
    PDU_ASSOC_AC = 0x02,
    PDU_P_DATA = 0x04,
    PDU_RELEASE_RQ = 0x05,
    PDU_RELEASE_RP = 0x06,
    PDU_ABORT = 0x07,
};

static const char APP_CONTEXT[] = "1.2.840.10008.3.1.1.1";
static const char IMPLICIT_LE[] = "1.2.840.10008.1.2";
static const char VERIFICATION[] = "1.2.840.10008.1.1";
static const char IMPL_CLASS_UID[] = "1.2.826.0.1.3680043.9.9999.1";
static const char IMPL_VERSION[] = "PACSAUDIT_BENCH";
static const uint32_t OUR_MAX_PDU = 16384;

struct conn {
    int fd;
    enum mode mode;
    enum state state;
    time_t last_active;
    uint8_t *in;  /* grows up to MAX_RECV_TOTAL, allocated on first byte */
    size_t in_len, in_cap;
    size_t received_total;
    uint8_t out[MAX_OUT];
    size_t out_len, out_off;
    int close_after_flush;
    int want_out; /* registered for EPOLLOUT */
    uint8_t cmd[MAX_CMD]; /* reassembled command set fragments */
    size_t cmd_len;
};

struct stats {
    unsigned long accepted[MODE_COUNT];
    unsigned long assoc_ac, echo_rsp, other_rsp, release_rp, aborts_rx, aborts_tx, dropped, idle_dropped;
};

static volatile sig_atomic_t g_stop = 0;
static struct conn **g_conns;     /* indexed by fd */
static signed char *g_listen_mode; /* indexed by fd; -1 when not a listener */
static int g_fd_cap;
static int g_epfd;
static int g_reserve_fd = -1;
static struct stats g_stats;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t get32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static void putle16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void putle32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void conn_close(struct conn *c) {
    close(c->fd); /* the only descriptor of its socket: closing it leaves the epoll set too */
    g_conns[c->fd] = NULL;
    free(c->in);
    free(c);
}

/* Reserve room in the output buffer; NULL means the reply would not fit. */
static uint8_t *out_reserve(struct conn *c, size_t n) {
    if (c->out_len + n > MAX_OUT) return NULL;
    uint8_t *p = c->out + c->out_len;
    c->out_len += n;
    return p;
}

/* Write what is pending; returns -1 when the connection is finished/broken. */
static int conn_flush(struct conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!c->want_out) {
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.fd = c->fd};
                    epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev);
                    c->want_out = 1;
                }
                return 0;
            }
            return -1;
        }
        c->out_off += (size_t)w;
    }
    c->out_len = c->out_off = 0;
    if (c->close_after_flush) return -1;
    if (c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c->fd};
        epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = 0;
    }
    return 0;
}

/* A-ABORT (PS3.8 9.3.8): source 2 = service provider. */
static void queue_abort(struct conn *c, uint8_t reason) {
    uint8_t *p = out_reserve(c, 10);
    if (p) {
        memset(p, 0, 10);
        p[0] = PDU_ABORT;
        put32(p + 2, 4);
        p[8] = 2;
        p[9] = reason;
    }
    g_stats.aborts_tx++;
    c->close_after_flush = 1;
    c->state = ST_CLOSING;
}

static size_t put_item(uint8_t *p, uint8_t type, const char *s) {
    size_t n = strlen(s);
    p[0] = type;
    p[1] = 0;
    put16(p + 2, (uint16_t)n);
    memcpy(p + 4, s, n);
    return 4 + n;
}

/* A-ASSOCIATE-RQ (PS3.8 9.3.2) -> A-ASSOCIATE-AC (9.3.3). pdu points at the PDU header. */
static void handle_assoc_rq(struct conn *c, const uint8_t *pdu, size_t pdu_len) {
    uint8_t ids[128];
    size_t n_ids = 0;
    int have_app_ctx = 0;
    if (pdu_len < 74 || get16(pdu + 6) != 0x0001) {
        queue_abort(c, 6);
        return;
    }
    size_t off = 74;
    while (off + 4 <= pdu_len) {
        uint8_t type = pdu[off];
        size_t ilen = get16(pdu + off + 2);
        if (off + 4 + ilen > pdu_len) {
            queue_abort(c, 6);
            return;
        }
        if (type == 0x10) have_app_ctx = 1;
        if (type == 0x20 && ilen >= 4 && n_ids < sizeof ids) ids[n_ids++] = pdu[off + 4];
        off += 4 + ilen;
    }
    if (!have_app_ctx || n_ids == 0) {
        queue_abort(c, 6);
        return;
    }
    uint8_t body[MAX_OUT];
    size_t b = 0;
    put16(body + b, 0x0001); /* protocol version */
    b += 2;
    put16(body + b, 0);
    b += 2;
    memcpy(body + b, pdu + 10, 32); /* called + calling AE fields, echoed */
    b += 32;
    memset(body + b, 0, 32);
    b += 32;
    b += put_item(body + b, 0x10, APP_CONTEXT);
    for (size_t i = 0; i < n_ids; i++) {
        size_t ts = strlen(IMPLICIT_LE);
        body[b] = 0x21;
        body[b + 1] = 0;
        put16(body + b + 2, (uint16_t)(4 + 4 + ts));
        body[b + 4] = ids[i];
        body[b + 5] = 0;
        body[b + 6] = 0; /* result: acceptance */
        body[b + 7] = 0;
        b += 8;
        b += put_item(body + b, 0x40, IMPLICIT_LE);
    }
    size_t ui_start = b;
    b += 4;
    body[b] = 0x51;
    body[b + 1] = 0;
    put16(body + b + 2, 4);
    put32(body + b + 4, OUR_MAX_PDU);
    b += 8;
    b += put_item(body + b, 0x52, IMPL_CLASS_UID);
    b += put_item(body + b, 0x55, IMPL_VERSION);
    body[ui_start] = 0x50;
    body[ui_start + 1] = 0;
    put16(body + ui_start + 2, (uint16_t)(b - ui_start - 4));

    uint8_t *p = out_reserve(c, 6 + b);
    if (!p) {
        queue_abort(c, 0);
        return;
    }
    p[0] = PDU_ASSOC_AC;
    p[1] = 0;
    put32(p + 2, (uint32_t)b);
    memcpy(p + 6, body, b);
    c->state = ST_ESTABLISHED;
    g_stats.assoc_ac++;
}

/* Find an element of an implicit VR LE group-0000 command set. */
static const uint8_t *cmd_find(const uint8_t *cmd, size_t len, uint16_t elem, uint32_t *vlen) {
    size_t off = 0;
    while (off + 8 <= len) {
        uint16_t g = le16(cmd + off), e = le16(cmd + off + 2);
        uint32_t l = le32(cmd + off + 4);
        if (l > len - off - 8) return NULL;
        if (g == 0x0000 && e == elem) {
            *vlen = l;
            return cmd + off + 8;
        }
        off += 8 + l;
    }
    return NULL;
}

static size_t put_elem(uint8_t *p, uint16_t elem, const uint8_t *v, uint32_t len) {
    putle16(p, 0x0000);
    putle16(p + 2, elem);
    putle32(p + 4, len);
    memcpy(p + 8, v, len);
    return 8 + len;
}

static size_t put_us(uint8_t *p, uint16_t elem, uint16_t v) {
    uint8_t b[2];
    putle16(b, v);
    return put_elem(p, elem, b, 2);
}

/* A complete DIMSE command set arrived on presentation context ctx (PS3.7 9.3, 9.1.5). */
static void handle_command(struct conn *c, uint8_t ctx) {
    uint32_t l;
    const uint8_t *v = cmd_find(c->cmd, c->cmd_len, 0x0100, &l);
    if (!v || l != 2) {
        queue_abort(c, 6);
        return;
    }
    uint16_t field = le16(v);
    if (field & 0x8000) return; /* a response from the peer: nothing to answer */
    uint16_t msg_id = 0;
    v = cmd_find(c->cmd, c->cmd_len, 0x0110, &l);
    if (v && l == 2) msg_id = le16(v);
    const uint8_t *uid = (const uint8_t *)VERIFICATION;
    uint32_t uid_len = (uint32_t)strlen(VERIFICATION);
    v = cmd_find(c->cmd, c->cmd_len, 0x0002, &l);
    if (v && l > 0 && l <= 64) {
        uid = v;
        uid_len = l;
    }
    uint8_t uid_buf[66];
    memcpy(uid_buf, uid, uid_len);
    if (uid_len & 1) uid_buf[uid_len++] = 0; /* UI values are padded to even length with NUL */

    int is_echo = field == 0x0030;
    uint8_t elems[256];
    size_t n = 0;
    n += put_elem(elems + n, 0x0002, uid_buf, uid_len);
    n += put_us(elems + n, 0x0100, (uint16_t)(field | 0x8000));
    n += put_us(elems + n, 0x0120, msg_id);
    n += put_us(elems + n, 0x0800, 0x0101); /* no data set */
    n += put_us(elems + n, 0x0900, is_echo ? 0x0000 : 0x0211);
    uint8_t gl[4];
    putle32(gl, (uint32_t)n);

    size_t cmd_total = 12 + n;
    uint8_t *p = out_reserve(c, 6 + 6 + cmd_total);
    if (!p) {
        queue_abort(c, 0);
        return;
    }
    p[0] = PDU_P_DATA;
    p[1] = 0;
    put32(p + 2, (uint32_t)(6 + cmd_total));
    put32(p + 6, (uint32_t)(2 + cmd_total)); /* PDV item length */
    p[10] = ctx;
    p[11] = 0x03; /* command, last fragment */
    size_t o = 12;
    o += put_elem(p + o, 0x0000, gl, 4);
    memcpy(p + o, elems, n);
    if (is_echo)
        g_stats.echo_rsp++;
    else
        g_stats.other_rsp++;
}

/* P-DATA-TF (PS3.8 9.3.5): walk the PDVs, reassemble command fragments. */
static void handle_pdata(struct conn *c, const uint8_t *pdu, size_t pdu_len) {
    size_t off = 6;
    while (off + 6 <= pdu_len && c->state == ST_ESTABLISHED) {
        uint32_t ilen = get32(pdu + off);
        if (ilen < 2 || ilen > pdu_len - off - 4) {
            queue_abort(c, 6);
            return;
        }
        uint8_t ctx = pdu[off + 4], mch = pdu[off + 5];
        const uint8_t *frag = pdu + off + 6;
        size_t flen = ilen - 2;
        if (mch & 0x01) {
            if (c->cmd_len + flen > MAX_CMD) {
                queue_abort(c, 0);
                return;
            }
            memcpy(c->cmd + c->cmd_len, frag, flen);
            c->cmd_len += flen;
            if (mch & 0x02) {
                handle_command(c, ctx);
                c->cmd_len = 0;
            }
        }
        off += 4 + ilen;
    }
}

static void handle_release_rq(struct conn *c) {
    uint8_t *p = out_reserve(c, 10);
    if (p) {
        memset(p, 0, 10);
        p[0] = PDU_RELEASE_RP;
        put32(p + 2, 4);
    }
    g_stats.release_rp++;
    c->close_after_flush = 1;
    c->state = ST_CLOSING;
}

static void handle_malformed(struct conn *c) {
    static const uint8_t bogus[] = {PDU_ASSOC_AC, 0x00, 0xFF, 0xFF, 0xFF, 0xF0, 0x00, 0x01, 0x00, 0x00};
    uint8_t *p = out_reserve(c, sizeof bogus);
    if (p) memcpy(p, bogus, sizeof bogus);
    c->close_after_flush = 1;
    c->state = ST_CLOSING;
}

/* Consume every complete PDU in the input buffer. Returns -1 to drop the connection. */
static int process_input(struct conn *c) {
    size_t off = 0;
    while (c->state != ST_CLOSING && c->in_len - off >= 6) {
        const uint8_t *pdu = c->in + off;
        uint32_t body = get32(pdu + 2);
        if (body > MAX_RECV_TOTAL - 6) return -1; /* could never fit under the cap */
        size_t total = 6 + (size_t)body;
        if (c->in_len - off < total) break;
        if (c->mode == MODE_MALFORMED) {
            handle_malformed(c);
        } else if (pdu[0] == PDU_ABORT) {
            g_stats.aborts_rx++;
            return -1;
        } else if (c->state == ST_AWAIT_RQ) {
            if (pdu[0] == PDU_ASSOC_RQ)
                handle_assoc_rq(c, pdu, total);
            else
                queue_abort(c, pdu[0] <= PDU_ABORT ? 2 : 1);
        } else if (pdu[0] == PDU_P_DATA) {
            handle_pdata(c, pdu, total);
        } else if (pdu[0] == PDU_RELEASE_RQ) {
            handle_release_rq(c);
        } else {
            queue_abort(c, pdu[0] <= PDU_ABORT ? 2 : 1);
        }
        off += total;
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    return conn_flush(c);
}

static int conn_readable(struct conn *c) {
    for (int rounds = 0; rounds < 16; rounds++) {
        uint8_t scratch[4096];
        uint8_t *dst;
        size_t room;
        if (c->mode == MODE_TARPIT) {
            dst = scratch;
            room = sizeof scratch;
        } else {
            if (c->in_cap - c->in_len < 2048 && c->in_cap < MAX_RECV_TOTAL) {
                size_t ncap = c->in_cap ? c->in_cap * 2 : 2048;
                if (ncap > MAX_RECV_TOTAL) ncap = MAX_RECV_TOTAL;
                uint8_t *nin = realloc(c->in, ncap);
                if (!nin) return -1;
                c->in = nin;
                c->in_cap = ncap;
            }
            dst = c->in + c->in_len;
            room = c->in_cap - c->in_len;
            if (room == 0) return -1;
        }
        ssize_t r = recv(c->fd, dst, room, 0);
        if (r == 0) return -1;
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        c->last_active = time(NULL);
        c->received_total += (size_t)r;
        if (c->received_total > MAX_RECV_TOTAL) {
            g_stats.dropped++;
            return -1;
        }
        if (c->mode == MODE_TARPIT) continue;
        c->in_len += (size_t)r;
        if (process_input(c) < 0) return -1;
        if (c->state == ST_CLOSING) return 0;
        /* A short read drained the socket: epoll (level-triggered) reports the next bytes, so
           no read that can only say EAGAIN. */
        if ((size_t)r < room) return 0;
    }
    return 0;
}

/* One connection per readiness: the listener is level-triggered, so a second waiting client is
   reported by the next epoll_wait, and no accept has to come back with EAGAIN. */
static void accept_on(int lfd, enum mode mode) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if ((errno == EMFILE || errno == ENFILE) && g_reserve_fd >= 0) {
            /* Out of descriptors: accept and shed one so the listener does not spin. */
            close(g_reserve_fd);
            int shed = accept(lfd, NULL, NULL);
            if (shed >= 0) close(shed);
            g_reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            g_stats.dropped++;
        }
        return;
    }
    struct conn *c = fd < g_fd_cap ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd; /* TCP_NODELAY comes from the listener (Linux copies it to accepted sockets) */
    c->mode = mode;
    c->state = ST_AWAIT_RQ;
    c->last_active = time(NULL);
    g_conns[fd] = c;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
    if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        g_conns[fd] = NULL;
        close(fd);
        free(c);
        return;
    }
    g_stats.accepted[mode]++;
}

static int parse_mode(const char *s, size_t n, enum mode *out) {
    for (int m = 0; m < MODE_COUNT; m++) {
        if (strlen(MODE_NAMES[m]) == n && strncmp(s, MODE_NAMES[m], n) == 0) {
            *out = (enum mode)m;
            return 0;
        }
    }
    return -1;
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s [--base 127.78.0.1] [--port 11112] [--count N --mode MODE]\n"
            "          [--fleet MODE:N ...] [--map FILE] [--lifetime S] [--idle-timeout S]\n"
            "MODE is accept-any, tarpit, malformed or closed; addresses must be in 127.0.0.0/8.\n",
            argv0);
}

int main(int argc, char **argv) {
    const char *base_s = "127.78.0.1", *map_path = NULL;
    int port = 11112, lifetime = 900, idle_timeout = 120;
    long single_count = -1;
    enum mode single_mode = MODE_ACCEPT_ANY;
    enum mode group_mode[MAX_GROUPS];
    long group_count[MAX_GROUPS];
    int n_groups = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage(argv[0]);
            return 2;
        }
        if (!strcmp(a, "--base")) {
            base_s = v;
        } else if (!strcmp(a, "--port")) {
            port = atoi(v);
        } else if (!strcmp(a, "--count")) {
            single_count = atol(v);
        } else if (!strcmp(a, "--mode")) {
            if (parse_mode(v, strlen(v), &single_mode) < 0) {
                usage(argv[0]);
                return 2;
            }
        } else if (!strcmp(a, "--fleet")) {
            const char *colon = strchr(v, ':');
            if (!colon || n_groups >= MAX_GROUPS ||
                parse_mode(v, (size_t)(colon - v), &group_mode[n_groups]) < 0) {
                usage(argv[0]);
                return 2;
            }
            group_count[n_groups++] = atol(colon + 1);
        } else if (!strcmp(a, "--map")) {
            map_path = v;
        } else if (!strcmp(a, "--lifetime")) {
            lifetime = atoi(v);
        } else if (!strcmp(a, "--idle-timeout")) {
            idle_timeout = atoi(v);
        } else {
            usage(argv[0]);
            return 2;
        }
        i++;
    }
    if (n_groups == 0) {
        group_mode[0] = single_mode;
        group_count[0] = single_count < 0 ? 1000 : single_count;
        n_groups = 1;
    }
    long total = 0;
    for (int g = 0; g < n_groups; g++) {
        if (group_count[g] < 0) {
            usage(argv[0]);
            return 2;
        }
        total += group_count[g];
    }
    if (port <= 0 || port > 65535 || total <= 0 || total > MAX_ADDRS || lifetime <= 0) {
        usage(argv[0]);
        return 2;
    }
    struct in_addr base;
    if (inet_pton(AF_INET, base_s, &base) != 1 || (ntohl(base.s_addr) >> 24) != 127) {
        fprintf(stderr, "dicom_fleet: --base must be an IPv4 address in 127.0.0.0/8\n");
        return 2;
    }

    /* Raise the descriptor limit: listeners plus tarpitted connections add up. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    g_fd_cap = rl.rlim_cur > 1048576 ? 1048576 : (int)rl.rlim_cur;
    g_conns = calloc((size_t)g_fd_cap, sizeof *g_conns);
    g_listen_mode = malloc((size_t)g_fd_cap);
    if (!g_conns || !g_listen_mode) return 1;
    memset(g_listen_mode, -1, (size_t)g_fd_cap);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g_epfd < 0) return 1;

    uint32_t *addrs = malloc(sizeof(uint32_t) * (size_t)total);
    enum mode *modes = malloc(sizeof(enum mode) * (size_t)total);
    if (!addrs || !modes) return 1;
    uint32_t a = ntohl(base.s_addr);
    long k = 0;
    for (int g = 0; g < n_groups; g++) {
        for (long j = 0; j < group_count[g]; j++) {
            while ((a & 0xFF) == 0 || (a & 0xFF) == 255) a++;
            if ((a >> 24) != 127) {
                fprintf(stderr, "dicom_fleet: fleet runs past 127.255.255.254\n");
                return 2;
            }
            addrs[k] = a;
            modes[k] = group_mode[g];
            k++;
            a++;
        }
    }

    for (long i = 0; i < total; i++) {
        if (modes[i] == MODE_CLOSED) continue;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || fd >= g_fd_cap) {
            perror("dicom_fleet: socket");
            return 1;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof sin);
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)port);
        sin.sin_addr.s_addr = htonl(addrs[i]);
        if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 4096) < 0) {
            char ip[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof ip);
            fprintf(stderr, "dicom_fleet: bind/listen %s:%d: %s\n", ip, port, strerror(errno));
            return 1;
        }
        g_listen_mode[fd] = (signed char)modes[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &ev) < 0) return 1;
    }
    g_reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    if (map_path) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", map_path);
        FILE *f = fopen(tmp, "w");
        if (!f) {
            perror("dicom_fleet: map");
            return 1;
        }
        fprintf(f, "{\"port\": %d, \"hosts\": {", port);
        for (long i = 0; i < total; i++) {
            struct in_addr ia = {.s_addr = htonl(addrs[i])};
            char ip[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &ia, ip, sizeof ip);
            fprintf(f, "%s\"%s\": \"%s\"", i ? ", " : "", ip, MODE_NAMES[modes[i]]);
        }
        fprintf(f, "}}\n");
        if (fclose(f) != 0 || rename(tmp, map_path) != 0) {
            perror("dicom_fleet: map");
            return 1;
        }
    }
    free(addrs);
    free(modes);
    printf("READY %ld\n", total);
    fflush(stdout);

    time_t started = time(NULL), last_sweep = started;
    struct epoll_event events[MAX_EVENTS];
    while (!g_stop) {
        time_t now = time(NULL);
        if (now - started >= lifetime) break;
        int n = epoll_wait(g_epfd, events, MAX_EVENTS, 500);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("dicom_fleet: epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (g_listen_mode[fd] >= 0) {
                accept_on(fd, (enum mode)g_listen_mode[fd]);
                continue;
            }
            struct conn *c = g_conns[fd];
            if (!c) continue;
            int rc = 0;
            if (events[i].events & EPOLLOUT) rc = conn_flush(c);
            if (rc == 0 && (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                rc = conn_readable(c);
            if (rc < 0) conn_close(c);
        }
        now = time(NULL);
        if (now != last_sweep) {
            last_sweep = now;
            for (int fd = 0; fd < g_fd_cap; fd++) {
                struct conn *c = g_conns[fd];
                if (c && now - c->last_active > idle_timeout) {
                    g_stats.idle_dropped++;
                    conn_close(c);
                }
            }
        }
    }

    fprintf(stderr,
            "dicom_fleet: accepted accept-any=%lu tarpit=%lu malformed=%lu; assoc_ac=%lu echo_rsp=%lu "
            "other_rsp=%lu release_rp=%lu aborts_rx=%lu aborts_tx=%lu dropped=%lu idle_dropped=%lu\n",
            g_stats.accepted[MODE_ACCEPT_ANY], g_stats.accepted[MODE_TARPIT], g_stats.accepted[MODE_MALFORMED],
            g_stats.assoc_ac, g_stats.echo_rsp, g_stats.other_rsp, g_stats.release_rp, g_stats.aborts_rx,
            g_stats.aborts_tx, g_stats.dropped, g_stats.idle_dropped);
    return 0;
}
