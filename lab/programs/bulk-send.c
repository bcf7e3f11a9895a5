/*
 * bulk-send - TCP client sending BYTES bytes to bulk-recv and timing it.
 *
 * usage: bulk-send ADDRESS PORT BYTES [CHUNK]
 *
 * socket, connect, sendto an 8-byte big-endian length header, sendto the
 * data CHUNK bytes at a time (default 65536; the byte at offset i is
 * i % 251), shutdown(SHUT_WR) so the receiver sees EOF, recvfrom until the
 * receiver closes too, close. The time runs from the first send to the
 * receiver's close, so it covers the delivery of every byte.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG "bulk-send"
#define PATTERN 251
#define MAX_CHUNK (16L << 20)

static void usage(void)
{
    fputs("usage: " PROG " ADDRESS PORT BYTES [CHUNK]\n"
          "  send BYTES bytes to bulk-recv, CHUNK (default 65536) per send\n",
          stderr);
    exit(2);
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static long long parse_number(const char *text, long long min, long long max)
{
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        usage();
    return value;
}

/* Numeric only: no DNS and no NSS, which a static glibc binary cannot load. */
static struct addrinfo *resolve(const char *address, const char *port, int socktype)
{
    struct addrinfo hints, *result;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = getaddrinfo(address, port, &hints, &result);
    if (rc != 0) {
        fprintf(stderr, PROG ": bad address %s (numeric IPv4 or IPv6 only): %s\n", address,
                gai_strerror(rc));
        usage();
    }
    return result;
}

/* send() may take only part of a buffer; MSG_NOSIGNAL turns a vanished
 * receiver into an EPIPE error message instead of a silent SIGPIPE death. */
static void send_all(int fd, const unsigned char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0)
            die(PROG ": send");
        data += n;
        len -= (size_t)n;
    }
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5)
        usage();
    parse_number(argv[2], 1, 65535);
    uint64_t bytes = (uint64_t)parse_number(argv[3], 0, INT64_MAX);
    size_t chunk = (size_t)(argc > 4 ? parse_number(argv[4], 1, MAX_CHUNK) : 65536);
    struct addrinfo *ai = resolve(argv[1], argv[2], SOCK_STREAM);

    /* One pattern period longer than a chunk: every chunk is a slice of it. */
    unsigned char *pattern = malloc(chunk + PATTERN);
    if (pattern == NULL)
        die(PROG ": malloc");
    for (size_t i = 0; i < chunk + PATTERN; i++)
        pattern[i] = (unsigned char)(i % PATTERN);

    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0)
        die(PROG ": socket");
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        die(PROG ": connect");
    freeaddrinfo(ai);

    double start = seconds();
    unsigned char header[8];
    for (size_t i = 0; i < sizeof header; i++)
        header[i] = (unsigned char)(bytes >> (56 - 8 * i));
    send_all(fd, header, sizeof header);
    for (uint64_t sent = 0; sent < bytes;) {
        size_t len = bytes - sent < chunk ? (size_t)(bytes - sent) : chunk;
        send_all(fd, pattern + sent % PATTERN, len);
        sent += len;
    }
    if (shutdown(fd, SHUT_WR) < 0)
        die(PROG ": shutdown");
    char ignored[64];
    ssize_t n;
    while ((n = recv(fd, ignored, sizeof ignored, 0)) > 0)
        ;
    if (n < 0)
        die(PROG ": recv");
    double elapsed = seconds() - start;
    close(fd);
    free(pattern);
    printf(PROG ": sent %llu bytes in %.3f s (%.1f MB/s)\n", (unsigned long long)bytes,
           elapsed, elapsed > 0 ? (double)bytes / elapsed / 1e6 : 0.0);
    return 0;
}
