/*
 * bulk-recv - TCP server receiving one bulk transfer from bulk-send.
 *
 * usage: bulk-recv ADDRESS PORT
 *
 * socket, setsockopt, bind, listen, accept one connection, close the
 * listener, then recvfrom until EOF; close. The sender announces the length
 * in an 8-byte big-endian header, followed by bytes whose value at offset i
 * is i % 251 (a prime, so a lost, repeated or reordered chunk of any
 * power-of-two size shows). Prints the bytes received; exits 1 on a
 * mismatch or a short or long transfer.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG "bulk-recv"
#define PATTERN 251

static void usage(void)
{
    fputs("usage: " PROG " ADDRESS PORT\n"
          "  receive and verify one transfer from bulk-send\n",
          stderr);
    exit(2);
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static long parse_number(const char *text, long min, long max)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
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

static unsigned char buf[65536];

int main(int argc, char **argv)
{
    if (argc != 3)
        usage();
    parse_number(argv[2], 1, 65535);
    struct addrinfo *ai = resolve(argv[1], argv[2], SOCK_STREAM);

    int lfd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (lfd < 0)
        die(PROG ": socket");
    int one = 1; /* rebind at once when a lab re-runs an experiment */
    if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        die(PROG ": setsockopt SO_REUSEADDR");
    if (bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0)
        die(PROG ": bind");
    freeaddrinfo(ai);
    if (listen(lfd, 1) < 0)
        die(PROG ": listen");
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    int fd = accept(lfd, (struct sockaddr *)&peer, &peer_len);
    if (fd < 0)
        die(PROG ": accept");
    close(lfd);

    unsigned char header[8];
    ssize_t n = recv(fd, header, sizeof header, MSG_WAITALL);
    if (n < 0)
        die(PROG ": recv");
    if (n != sizeof header) {
        fprintf(stderr, PROG ": connection closed before the length header\n");
        return 1;
    }
    uint64_t expected = 0;
    for (size_t i = 0; i < sizeof header; i++)
        expected = expected << 8 | header[i];

    uint64_t total = 0;
    int status = 0;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != (total + (uint64_t)i) % PATTERN) {
                fprintf(stderr, PROG ": wrong data at byte %llu\n",
                        (unsigned long long)(total + (uint64_t)i));
                status = 1;
                break;
            }
        }
        total += (uint64_t)n;
        if (status != 0)
            break;
    }
    if (n < 0)
        die(PROG ": recv");
    close(fd);
    printf(PROG ": received %llu bytes\n", (unsigned long long)total);
    if (status == 0 && total != expected) {
        fprintf(stderr, PROG ": %s transfer: %llu of %llu announced bytes\n",
                total < expected ? "short" : "long", (unsigned long long)total,
                (unsigned long long)expected);
        status = 1;
    }
    return status;
}
