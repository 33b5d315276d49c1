/*
 * gbgen.c - GB/T 28181 PS-over-RTP load generator (N concurrent streams, one thread).
 *
 * Loads a pre-muxed MPEG-PS clip (one PS pack per video frame, from mkps.py) and its frame
 * index, pre-packetizes every frame into RTP payload slices (<= 1400 bytes) once, and then
 * replays the clip in a loop to N destination ports on 127.0.0.1, paced at 25 fps:
 *
 *   - stream i sends to port base+2*i (UDP: connected socket, sendmmsg; TCP: connects to the
 *     passive receiver and writes RFC 4571 2-byte-length-framed RTP with writev);
 *   - per-stream SSRC (ssrc_base+i), continuous sequence numbers, RTP ts = base + n*3600;
 *   - per-stream SCR/PTS inside the PS are rewritten on the fly (only the first RTP packet
 *     of a frame is copied and patched) so timestamps stay monotonic across clip loops;
 *   - streams are phase-spread evenly over the 40 ms frame interval and start at different
 *     positions in the clip (so key frames of different streams do not coincide);
 *   - a frame's packets are sent back-to-back at its frame tick (camera-like burst).
 *
 * Prints one "stat" line per second (cumulative counters) to stdout and a final line at exit.
 *
 * bench/gb_ingest copy: ../shared/peers/zlmediakit/gbgen.c plus -G: UDP GSO (UDP_SEGMENT), one
 * sendmsg per up to 44 packets of a frame instead of one sendmmsg entry per packet, so the generator
 * core (which on loopback also runs the kernel's receive path) is not the limit below ~2000 streams.
 * Same packets on the wire (the kernel cuts them back into datagrams before the receiver sees them).
 *
 * Build: gcc -O2 -Wall -o gbgen gbgen.c
 * Usage: gbgen -c clip_prefix -n N [-P base_port] [-S ssrc_base] [-T] [-d seconds]
 *              [-r fps] [-m max_payload] [-o start_offset_step]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAXPKT_PER_CALL 256

typedef struct {
    uint32_t off;   /* offset of the PS unit in clip buffer */
    uint32_t len;
    int key;
    int pts_off;    /* offset of 5-byte PES PTS inside the unit */
    int first_pkt;  /* index into pkt arrays */
    int npkts;
} frame_t;

typedef struct {
    int fd;
    uint32_t ssrc;
    uint16_t seq;
    uint32_t ts_base;
    uint64_t pts_base;
    uint64_t count;  /* frames sent */
    int clip_idx;
    uint64_t pkts, bytes;
} stream_t;

static volatile sig_atomic_t g_stop = 0;
static void on_sig(int s) { (void)s; g_stop = 1; }

static uint8_t *g_clip;
static size_t g_clip_len;
static frame_t *g_frames;
static int g_nframes;
static uint32_t *g_pkt_off, *g_pkt_len;
static int g_npkts_total, g_max_npkts;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void sleep_until(uint64_t t) {
    struct timespec ts = {.tv_sec = t / 1000000000ull, .tv_nsec = t % 1000000000ull};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !g_stop) {}
}

static void load_clip(const char *prefix, int max_payload) {
    char path[4096];
    snprintf(path, sizeof path, "%s.ps", prefix);
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    struct stat st;
    fstat(fileno(f), &st);
    g_clip_len = st.st_size;
    g_clip = malloc(g_clip_len);
    if (fread(g_clip, 1, g_clip_len, f) != g_clip_len) { perror("read clip"); exit(1); }
    fclose(f);

    snprintf(path, sizeof path, "%s.idx", prefix);
    f = fopen(path, "r");
    if (!f) { perror(path); exit(1); }
    int cap = 1024;
    g_frames = calloc(cap, sizeof(frame_t));
    unsigned off, len;
    int key, pts_off;
    while (fscanf(f, "%u %u %d %d", &off, &len, &key, &pts_off) == 4) {
        if (g_nframes == cap) { cap *= 2; g_frames = realloc(g_frames, cap * sizeof(frame_t)); }
        frame_t *fr = &g_frames[g_nframes++];
        fr->off = off; fr->len = len; fr->key = key; fr->pts_off = pts_off;
    }
    fclose(f);
    if (!g_nframes) { fprintf(stderr, "empty index\n"); exit(1); }

    /* pre-packetize */
    int total = 0;
    for (int i = 0; i < g_nframes; i++) total += (g_frames[i].len + max_payload - 1) / max_payload;
    g_pkt_off = malloc(total * sizeof(uint32_t));
    g_pkt_len = malloc(total * sizeof(uint32_t));
    int k = 0;
    for (int i = 0; i < g_nframes; i++) {
        frame_t *fr = &g_frames[i];
        fr->first_pkt = k;
        for (uint32_t p = 0; p < fr->len; p += max_payload) {
            g_pkt_off[k] = fr->off + p;
            g_pkt_len[k] = (fr->len - p) < (uint32_t)max_payload ? (fr->len - p) : (uint32_t)max_payload;
            k++;
        }
        fr->npkts = k - fr->first_pkt;
        if (fr->npkts > g_max_npkts) g_max_npkts = fr->npkts;
        if (fr->pts_off + 5 > (int)g_pkt_len[fr->first_pkt]) { fprintf(stderr, "PTS not in 1st packet\n"); exit(1); }
    }
    g_npkts_total = k;
}

/* MPEG-2 pack header SCR (ext 0) at unit[4..9] */
static void patch_scr(uint8_t *b, uint64_t s) {
    s &= (1ull << 33) - 1;
    b[4] = 0x40 | ((s >> 27) & 0x38) | 0x04 | ((s >> 28) & 0x03);
    b[5] = (s >> 20) & 0xFF;
    b[6] = ((s >> 12) & 0xF8) | 0x04 | ((s >> 13) & 0x03);
    b[7] = (s >> 5) & 0xFF;
    b[8] = ((s << 3) & 0xF8) | 0x04;
    b[9] = 0x01;
}

static void patch_pts(uint8_t *b, uint64_t ts) {
    ts &= (1ull << 33) - 1;
    b[0] = (2 << 4) | (((ts >> 30) & 0x07) << 1) | 1;
    b[1] = (ts >> 22) & 0xFF;
    b[2] = (((ts >> 15) & 0x7F) << 1) | 1;
    b[3] = (ts >> 7) & 0xFF;
    b[4] = ((ts & 0x7F) << 1) | 1;
}

static uint64_t g_send_err, g_partial;
static int g_gso, g_maxpl = 1400;
#define GSO_MAX_SEGS 44  /* 44 x 1412 < 64 KiB */

/* scratch */
static uint8_t (*g_hdr)[14];           /* [2-byte len][12-byte RTP header] */
static uint8_t g_first[2048];
static struct iovec *g_iov;
static struct mmsghdr *g_msgs;

static void send_frame(stream_t *s, int tcp, int pt) {
    frame_t *fr = &g_frames[s->clip_idx];
    uint32_t ts = s->ts_base + (uint32_t)(s->count * 3600u);
    uint64_t pts = s->pts_base + s->count * 3600u;
    int n = fr->npkts;
    /* first packet: copy and patch SCR + PTS */
    uint32_t l0 = g_pkt_len[fr->first_pkt];
    memcpy(g_first, g_clip + g_pkt_off[fr->first_pkt], l0);
    patch_scr(g_first, pts);
    patch_pts(g_first + fr->pts_off, pts);
    uint64_t bytes = 0;
    for (int j = 0; j < n; j++) {
        uint32_t plen = g_pkt_len[fr->first_pkt + j];
        uint8_t *h = g_hdr[j];
        uint16_t flen = (uint16_t)(12 + plen);
        h[0] = flen >> 8; h[1] = flen & 0xFF;
        h[2] = 0x80;
        h[3] = (uint8_t)((j == n - 1 ? 0x80 : 0) | (pt & 0x7F));
        h[4] = s->seq >> 8; h[5] = s->seq & 0xFF;
        h[6] = ts >> 24; h[7] = ts >> 16; h[8] = ts >> 8; h[9] = ts;
        h[10] = s->ssrc >> 24; h[11] = s->ssrc >> 16; h[12] = s->ssrc >> 8; h[13] = s->ssrc;
        s->seq++;
        g_iov[2 * j].iov_base = tcp ? h : h + 2;
        g_iov[2 * j].iov_len = tcp ? 14 : 12;
        g_iov[2 * j + 1].iov_base = j == 0 ? g_first : g_clip + g_pkt_off[fr->first_pkt + j];
        g_iov[2 * j + 1].iov_len = plen;
        bytes += 12 + plen;
    }
    if (!tcp && g_gso) {
        /* Every segment but a frame's last is 12 + max_payload bytes: one GSO send per chunk. */
        int done = 0;
        char ctrl[CMSG_SPACE(sizeof(uint16_t))];
        while (done < n) {
            int cnt = n - done;
            if (cnt > GSO_MAX_SEGS) cnt = GSO_MAX_SEGS;
            struct msghdr mh;
            memset(&mh, 0, sizeof mh);
            mh.msg_iov = &g_iov[2 * done];
            mh.msg_iovlen = 2 * cnt;
            if (cnt > 1) {
                memset(ctrl, 0, sizeof ctrl);
                mh.msg_control = ctrl;
                mh.msg_controllen = sizeof ctrl;
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_UDP;
                cm->cmsg_type = UDP_SEGMENT;
                cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                *(uint16_t *)CMSG_DATA(cm) = (uint16_t)(12 + g_maxpl);
            }
            if (sendmsg(s->fd, &mh, 0) < 0) g_send_err++;
            done += cnt;
        }
    } else if (!tcp) {
        int done = 0;
        while (done < n) {
            int cnt = n - done;
            if (cnt > MAXPKT_PER_CALL) cnt = MAXPKT_PER_CALL;
            for (int j = 0; j < cnt; j++) {
                memset(&g_msgs[j], 0, sizeof(g_msgs[j]));
                g_msgs[j].msg_hdr.msg_iov = &g_iov[2 * (done + j)];
                g_msgs[j].msg_hdr.msg_iovlen = 2;
            }
            int r = sendmmsg(s->fd, g_msgs, cnt, 0);
            if (r <= 0) { g_send_err++; done++; continue; }  /* skip the failing packet */
            done += r;
        }
    } else {
        struct iovec *iov = g_iov;
        int iovcnt = 2 * n;
        while (iovcnt > 0) {
            int c = iovcnt > 1024 ? 1024 : iovcnt;
            ssize_t r = writev(s->fd, iov, c);
            if (r < 0) {
                if (errno == EINTR) continue;
                g_send_err++;
                break;
            }
            /* advance */
            while (r > 0 && iovcnt > 0) {
                if ((size_t)r >= iov->iov_len) { r -= iov->iov_len; iov++; iovcnt--; }
                else { iov->iov_base = (uint8_t *)iov->iov_base + r; iov->iov_len -= r; r = 0; g_partial++; }
            }
        }
    }
    s->pkts += n;
    s->bytes += bytes;
    s->count++;
    s->clip_idx = (s->clip_idx + 1) % g_nframes;
}

int main(int argc, char **argv) {
    const char *clip = NULL;
    int n = 1, base = 20000, tcp = 0, fps = 25, maxpl = 1400, pt = 96, ostep = 53;
    uint32_t ssrc_base = 100000000u;
    double dur = 0;
    int c;
    while ((c = getopt(argc, argv, "c:n:P:S:Td:r:m:o:p:G")) != -1) {
        switch (c) {
        case 'c': clip = optarg; break;
        case 'n': n = atoi(optarg); break;
        case 'P': base = atoi(optarg); break;
        case 'S': ssrc_base = strtoul(optarg, NULL, 0); break;
        case 'T': tcp = 1; break;
        case 'G': g_gso = 1; break;
        case 'd': dur = atof(optarg); break;
        case 'r': fps = atoi(optarg); break;
        case 'm': maxpl = atoi(optarg); break;
        case 'o': ostep = atoi(optarg); break;
        case 'p': pt = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: %s -c clip_prefix -n N [-P base_port] [-S ssrc_base] [-T] [-d sec] [-r fps] [-m max_payload]\n", argv[0]);
            return 2;
        }
    }
    if (!clip || n < 1 || maxpl > 1400 || maxpl < 64) { fprintf(stderr, "bad args\n"); return 2; }
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    signal(SIGPIPE, SIG_IGN);
    g_maxpl = maxpl;
    load_clip(clip, maxpl);
    g_hdr = calloc(g_max_npkts, 14);
    g_iov = calloc(2 * g_max_npkts, sizeof(struct iovec));
    g_msgs = calloc(MAXPKT_PER_CALL, sizeof(struct mmsghdr));
    fprintf(stderr, "gbgen: clip %d frames, %d packets (max %d/frame), %zu bytes; %d streams %s -> 127.0.0.1:%d..%d\n",
            g_nframes, g_npkts_total, g_max_npkts, g_clip_len, n, tcp ? "TCP(RFC4571)" : "UDP", base, base + 2 * (n - 1));

    stream_t *st = calloc(n, sizeof(stream_t));
    srand(12345);
    for (int i = 0; i < n; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(base + 2 * i)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        st[i].fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
        if (st[i].fd < 0) { perror("socket"); return 1; }
        if (tcp) {
            int one = 1;
            setsockopt(st[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        if (connect(st[i].fd, (struct sockaddr *)&a, sizeof a) < 0) {
            fprintf(stderr, "connect stream %d port %d: %s\n", i, base + 2 * i, strerror(errno));
            return 1;
        }
        st[i].ssrc = ssrc_base + i;
        st[i].seq = (uint16_t)rand();
        st[i].ts_base = (uint32_t)rand();
        st[i].pts_base = ((uint64_t)rand() & 0x3FFFFFFF);
        st[i].clip_idx = (int)(((long)i * ostep) % g_nframes);
    }

    const uint64_t period = 1000000000ull / fps;
    uint64_t t0 = now_ns() + 20000000ull;
    uint64_t slot = 0, late_gt5 = 0, late_gt20 = 0;
    double late_max = 0, late_max_sec = 0;
    uint64_t next_stat = t0 + 1000000000ull;
    uint64_t tend = dur > 0 ? t0 + (uint64_t)(dur * 1e9) : UINT64_MAX;
    uint64_t tot_pkts = 0, tot_bytes = 0;
    while (!g_stop) {
        uint64_t round = slot / n, idx = slot % n;
        uint64_t due = t0 + round * period + idx * period / n;
        uint64_t now = now_ns();
        if (now >= next_stat) {
            printf("stat t=%.1f pkts=%llu bytes=%llu frames=%llu late_max_ms=%.3f late_max_1s_ms=%.3f late_gt5ms=%llu late_gt20ms=%llu send_err=%llu\n",
                   (next_stat - t0) / 1e9, (unsigned long long)tot_pkts, (unsigned long long)tot_bytes,
                   (unsigned long long)slot, late_max, late_max_sec, (unsigned long long)late_gt5,
                   (unsigned long long)late_gt20, (unsigned long long)g_send_err);
            fflush(stdout);
            late_max_sec = 0;
            next_stat += 1000000000ull;
        }
        if (now >= tend) break;
        if (due > now + 50000) {
            sleep_until(due < next_stat ? due : next_stat);
            continue;
        }
        double late = now > due ? (now - due) / 1e6 : 0;
        if (late > late_max) late_max = late;
        if (late > late_max_sec) late_max_sec = late;
        if (late > 5) late_gt5++;
        if (late > 20) late_gt20++;
        stream_t *s = &st[idx];
        uint64_t p0 = s->pkts, b0 = s->bytes;
        send_frame(s, tcp, pt);
        tot_pkts += s->pkts - p0;
        tot_bytes += s->bytes - b0;
        slot++;
    }
    printf("final pkts=%llu bytes=%llu frames=%llu late_max_ms=%.3f late_gt5ms=%llu late_gt20ms=%llu send_err=%llu partial=%llu\n",
           (unsigned long long)tot_pkts, (unsigned long long)tot_bytes, (unsigned long long)slot, late_max,
           (unsigned long long)late_gt5, (unsigned long long)late_gt20, (unsigned long long)g_send_err,
           (unsigned long long)g_partial);
    fflush(stdout);
    for (int i = 0; i < n; i++) close(st[i].fd);
    return 0;
}
