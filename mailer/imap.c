/* mailer/imap.c: IMAP client: libetpan's mailimap for the protocol, our own
 * transport underneath for TLS, timeouts and byte budgets.
 *
 * libetpan 1.9.4 as Debian builds it (GnuTLS) never verifies the server
 * certificate, and its socket driver has one timeout for everything and no
 * bound on reply size. So libetpan gets a mailstream_low driver from this
 * file ("net"): a non-blocking socket, optionally a GnuTLS session with
 * certificate and host name verification, poll() with a deadline on every
 * wait, and a per-command byte budget. mailimap only sees plaintext bytes.
 *
 * Ownership: struct imap_conn owns the mailimap session, and the struct net
 * inside it. The mailstream (owned by the session) points at that net;
 * closing the stream closes the socket and TLS session, freeing the conn
 * frees the credentials. The password is passed to LOGIN and not kept. */
#include "mailer/imap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <libetpan/libetpan.h>
#include <libetpan/mailimap_oauth2.h>

#include "common/cfg.h"
#include "common/limits.h"
#include "common/mem.h"

/* mailstream's read and write buffer. */
#define IMAP_STREAM_BUF 8192

enum net_fail {
	NET_OK,
	NET_TIMEOUT,
	NET_EOF,        /* peer closed */
	NET_IO,         /* errno in fail_errno */
	NET_TLS,        /* GnuTLS code in fail_tls */
	NET_BUDGET,     /* the reply passed its byte budget */
};

/* The transport under libetpan. */
struct net {
	int fd;                                 /* -1 when closed */
	gnutls_session_t tls;                   /* NULL: plaintext */
	gnutls_certificate_credentials_t cred;  /* NULL until TLS starts */
	int timeout_ms;                         /* each wait */
	size_t budget;                          /* bytes the reply may still take */
	size_t budget_cap;                      /* for the error message */
	enum net_fail fail;                     /* why the last read/write failed */
	int fail_errno;
	int fail_tls;
};

struct imap_conn {
	mailimap *imap;         /* NULL before the greeting is read */
	struct net net;
	char *host;             /* for messages */
	unsigned port;
	int timeout_ms;
	bool broken;            /* transport or parse error: only close() */
	bool selected;
};

/* ------------------------------------------------------------ net */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on n->fd until deadline. 0 ready, -1 with n->fail set. */
static int
net_wait(struct net *n, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = n->fd, .events = events };

	for (;;) {
		int64_t left = deadline - now_ms();
		int r;

		if (left <= 0) {
			n->fail = NET_TIMEOUT;
			return -1;
		}
		r = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (r > 0)
			return 0;         /* readable, writable, or HUP/ERR: the
			                   * next recv/send tells which */
		if (r == 0) {
			n->fail = NET_TIMEOUT;
			return -1;
		}
		if (errno != EINTR) {
			n->fail = NET_IO;
			n->fail_errno = errno;
			return -1;
		}
	}
}

static ssize_t
tls_push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
	struct net *n = p;
	ssize_t r = send(n->fd, buf, len, MSG_NOSIGNAL);

	if (r < 0)
		gnutls_transport_set_errno(n->tls, errno);
	return r;
}

static ssize_t
tls_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct net *n = p;
	ssize_t r = recv(n->fd, buf, len, 0);

	if (r < 0)
		gnutls_transport_set_errno(n->tls, errno);
	return r;
}

/* Only asked with 0 ms in non-blocking use: is there something to read? */
static int
tls_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
	struct net *n = p;
	struct pollfd pfd = { .fd = n->fd, .events = POLLIN };
	int wait = ms == GNUTLS_INDEFINITE_TIMEOUT || ms > (unsigned)n->timeout_ms ?
	    n->timeout_ms : (int)ms;

	return poll(&pfd, 1, wait);
}

static ssize_t
net_read(mailstream_low *s, void *buf, size_t count)
{
	struct net *n = s->data;
	int64_t deadline = now_ms() + n->timeout_ms;
	ssize_t r;

	if (n->fd < 0)
		return -1;
	if (n->budget == 0) {
		n->fail = NET_BUDGET;
		return -1;
	}
	if (count > n->budget)
		count = n->budget;        /* the next read then fails */
	for (;;) {
		short ev = POLLIN;

		if (n->tls != NULL) {
			r = gnutls_record_recv(n->tls, buf, count);
			if (r >= 0)
				break;
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
				ev = gnutls_record_get_direction(n->tls) ?
				    POLLOUT : POLLIN;
			} else if (r == GNUTLS_E_PREMATURE_TERMINATION) {
				n->fail = NET_EOF;
				return -1;
			} else if (gnutls_error_is_fatal((int)r)) {
				n->fail = NET_TLS;
				n->fail_tls = (int)r;
				return -1;
			} else {
				continue;         /* a warning alert, a ticket */
			}
		} else {
			r = recv(n->fd, buf, count, 0);
			if (r >= 0)
				break;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				n->fail = NET_IO;
				n->fail_errno = errno;
				return -1;
			}
		}
		if (net_wait(n, ev, deadline) < 0)
			return -1;
	}
	if (r == 0) {
		n->fail = NET_EOF;
		return 0;
	}
	n->budget -= (size_t)r;
	return r;
}

static ssize_t
net_write(mailstream_low *s, const void *buf, size_t count)
{
	struct net *n = s->data;
	int64_t deadline = now_ms() + n->timeout_ms;
	ssize_t r;

	if (n->fd < 0)
		return -1;
	for (;;) {
		short ev = POLLOUT;

		if (n->tls != NULL) {
			/* After GNUTLS_E_AGAIN the same buffer is passed again,
			 * as GnuTLS wants. */
			r = gnutls_record_send(n->tls, buf, count);
			if (r >= 0)
				return r;
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
				ev = gnutls_record_get_direction(n->tls) ?
				    POLLOUT : POLLIN;
			} else {
				n->fail = NET_TLS;
				n->fail_tls = (int)r;
				return -1;
			}
		} else {
			r = send(n->fd, buf, count, MSG_NOSIGNAL);
			if (r >= 0)
				return r;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				n->fail = NET_IO;
				n->fail_errno = errno;
				return -1;
			}
		}
		if (net_wait(n, ev, deadline) < 0)
			return -1;
	}
}

/* Closes the socket and TLS session; keeps the credentials. Idempotent. */
static void
net_shut(struct net *n)
{
	if (n->tls != NULL) {
		/* One non-blocking try at close_notify; nobody waits for it. */
		(void)gnutls_bye(n->tls, GNUTLS_SHUT_WR);
		gnutls_deinit(n->tls);
		n->tls = NULL;
	}
	if (n->fd >= 0) {
		close(n->fd);
		n->fd = -1;
	}
}

static int
net_close_cb(mailstream_low *s)
{
	net_shut(s->data);
	return 0;
}

static int
net_get_fd(mailstream_low *s)
{
	struct net *n = s->data;

	return n->fd;
}

/* The struct net belongs to the imap_conn: only the low itself goes. */
static void
net_free_cb(mailstream_low *s)
{
	s->data = NULL;
	free(s);
}

static struct mailstream_cancel *
net_get_cancel(mailstream_low *s)
{
	(void)s;
	return NULL;            /* no cancel pipe: IDLE waits poll the fd */
}

static carray *
net_get_cert_chain(mailstream_low *s)
{
	(void)s;
	return NULL;            /* verified at the handshake already */
}

static int
net_no_idle(mailstream_low *s)
{
	(void)s;
	return -1;              /* "not implemented: use select()" */
}

static mailstream_low_driver net_driver = {
	.mailstream_read = net_read,
	.mailstream_write = net_write,
	.mailstream_close = net_close_cb,
	.mailstream_get_fd = net_get_fd,
	.mailstream_free = net_free_cb,
	.mailstream_cancel = NULL,
	.mailstream_get_cancel = net_get_cancel,
	.mailstream_get_certificate_chain = net_get_cert_chain,
	.mailstream_setup_idle = net_no_idle,
	.mailstream_unsetup_idle = net_no_idle,
	.mailstream_interrupt_idle = net_no_idle,
};

/* Non-blocking connect to host:port with the timeout, trying each address.
 * 0 and n->fd set, or -1 with err set (temp). */
static int
net_connect(struct net *n, const char *host, unsigned port, struct err *err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL, *ai;
	char service[12];
	int64_t deadline = now_ms() + n->timeout_ms;
	int r, last_errno = 0, fd = -1;

	snprintf(service, sizeof service, "%u", port);
	r = getaddrinfo(host, service, &hints, &res);
	if (r != 0)
		return err_set(err, true, "imap: cannot resolve %s: %s", host,
		    gai_strerror(r));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		socklen_t len;
		int so_err = 0;

		fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			last_errno = errno;
			goto next;
		}
		n->fd = fd;
		if (net_wait(n, POLLOUT, deadline) < 0) {
			n->fd = -1;
			last_errno = n->fail == NET_TIMEOUT ? ETIMEDOUT :
			    n->fail_errno;
			goto next;
		}
		n->fd = -1;
		len = sizeof so_err;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &len) < 0)
			so_err = errno;
		if (so_err == 0)
			break;
		last_errno = so_err;
next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err_set_errno(err, true, last_errno ? last_errno : EIO,
		    "imap: connect to %s:%u", host, port);
	n->fd = fd;
	n->fail = NET_OK;
	return 0;
}

static bool
is_ip_literal(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1;
}

/* TLS handshake on n->fd, verifying the chain and that it names host.
 * 0, or -1 with err set: a certificate problem is !temp. */
static int
net_start_tls(struct net *n, const char *host, const char *ca_file,
    struct err *err)
{
	int64_t deadline = now_ms() + n->timeout_ms;
	int r;

	if (n->cred == NULL) {
		r = gnutls_certificate_allocate_credentials(&n->cred);
		if (r < 0)
			return err_set(err, true, "imap: TLS credentials: %s",
			    gnutls_strerror(r));
		if (ca_file != NULL)
			r = gnutls_certificate_set_x509_trust_file(n->cred,
			    ca_file, GNUTLS_X509_FMT_PEM);
		else
			r = gnutls_certificate_set_x509_system_trust(n->cred);
		if (r <= 0)
			return err_set(err, false,
			    "imap: no trusted CA certificates from %s%s%s",
			    ca_file ? ca_file : "the system store",
			    r < 0 ? ": " : "", r < 0 ? gnutls_strerror(r) : "");
	}
	r = gnutls_init(&n->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
	if (r < 0) {
		n->tls = NULL;
		return err_set(err, true, "imap: gnutls_init: %s",
		    gnutls_strerror(r));
	}
	if ((r = gnutls_set_default_priority(n->tls)) < 0 ||
	    (r = gnutls_credentials_set(n->tls, GNUTLS_CRD_CERTIFICATE,
		n->cred)) < 0 ||
	    (!is_ip_literal(host) &&
		(r = gnutls_server_name_set(n->tls, GNUTLS_NAME_DNS, host,
		    strlen(host))) < 0))
		return err_set(err, false, "imap: TLS setup: %s",
		    gnutls_strerror(r));
	/* The handshake fails unless the chain verifies and names host
	 * (a DNS name, or an IP literal against IP address SANs). */
	gnutls_session_set_verify_cert(n->tls, host, 0);
	gnutls_transport_set_ptr(n->tls, n);
	gnutls_transport_set_push_function(n->tls, tls_push);
	gnutls_transport_set_pull_function(n->tls, tls_pull);
	gnutls_transport_set_pull_timeout_function(n->tls, tls_pull_timeout);
	gnutls_handshake_set_timeout(n->tls, (unsigned)n->timeout_ms);

	for (;;) {
		r = gnutls_handshake(n->tls);
		if (r == GNUTLS_E_SUCCESS)
			return 0;
		if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
			gnutls_datum_t why = { NULL, 0 };
			unsigned status = gnutls_session_get_verify_cert_status(
			    n->tls);

			gnutls_certificate_verification_status_print(status,
			    gnutls_certificate_type_get(n->tls), &why, 0);
			err_set(err, false,
			    "imap: certificate of %s not trusted: %s", host,
			    why.data ? (const char *)why.data : "?");
			if (err != NULL)
				str_trim(err->msg);
			gnutls_free(why.data);
			return -1;
		}
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			short ev = gnutls_record_get_direction(n->tls) ?
			    POLLOUT : POLLIN;
			if (net_wait(n, ev, deadline) < 0)
				return err_set(err, true,
				    "imap: TLS handshake with %s: %s", host,
				    n->fail == NET_TIMEOUT ? "timed out" :
				    strerror(n->fail_errno));
			continue;
		}
		if (!gnutls_error_is_fatal(r))
			continue;
		return err_set(err, true, "imap: TLS handshake with %s: %s",
		    host, gnutls_strerror(r));
	}
}

/* ------------------------------------------------------------ errors */

static void
budget(struct imap_conn *c, size_t bytes)
{
	c->net.budget = bytes;
	c->net.budget_cap = bytes;
	c->net.fail = NET_OK;
}

/* The server's text of its last tagged reply, printable ASCII, cut. */
static const char *
server_text(const struct imap_conn *c, char *dst, size_t size)
{
	const char *s = c->imap != NULL ? c->imap->imap_response : NULL;
	size_t o = 0;

	if (s == NULL || *s == '\0')
		s = "(no text)";
	for (; *s != '\0' && o + 1 < size; s++)
		dst[o++] = (unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f ?
		    *s : '?';
	dst[o] = '\0';
	return dst;
}

/* RFC 5530 response codes that mean "try again later". */
static bool
reply_is_temp(const struct imap_conn *c)
{
	static const char *const codes[] = { "UNAVAILABLE", "INUSE",
		"SERVERBUG", "LIMIT" };
	const char *atom;

	if (c->imap == NULL || c->imap->imap_response_info == NULL)
		return false;
	atom = c->imap->imap_response_info->rsp_atom;
	if (atom == NULL)
		return false;
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		if (strcasecmp(atom, codes[i]) == 0)
			return true;
	return false;
}

/* Turns a mailimap result into err; returns -1. */
static int
fail(struct imap_conn *c, int r, const char *what, struct err *err)
{
	char text[160];
	const struct net *n = &c->net;

	switch (r) {
	case MAILIMAP_ERROR_STREAM:
		c->broken = true;
		switch (n->fail) {
		case NET_TIMEOUT:
			return err_set(err, true,
			    "imap: %s: no answer from %s:%u within %d s", what,
			    c->host, c->port, c->timeout_ms / 1000);
		case NET_IO:
			return err_set_errno(err, true, n->fail_errno,
			    "imap: %s: %s:%u", what, c->host, c->port);
		case NET_TLS:
			return err_set(err, true, "imap: %s: TLS: %s", what,
			    gnutls_strerror(n->fail_tls));
		case NET_BUDGET:
			return err_set(err, false,
			    "imap: %s: reply over %zu bytes", what,
			    n->budget_cap);
		case NET_EOF:
		case NET_OK:
			break;
		}
		return err_set(err, true, "imap: %s: connection to %s:%u lost",
		    what, c->host, c->port);
	case MAILIMAP_ERROR_PARSE:
		c->broken = true;
		return err_set(err, true, "imap: %s: unreadable reply from %s",
		    what, c->host);
	case MAILIMAP_ERROR_FATAL:                 /* BYE */
		c->broken = true;
		return err_set(err, true, "imap: %s: server ended the session: %s",
		    what, server_text(c, text, sizeof text));
	case MAILIMAP_ERROR_DONT_ACCEPT_CONNECTION: /* BYE as greeting */
		c->broken = true;
		return err_set(err, true, "imap: %s: server turned us away: %s",
		    what, server_text(c, text, sizeof text));
	case MAILIMAP_ERROR_MEMORY:
		c->broken = true;
		return err_set(err, true, "imap: %s: out of memory", what);
	case MAILIMAP_ERROR_PROTOCOL:              /* BAD or a wrong tag */
		return err_set(err, false, "imap: %s: server says BAD: %s", what,
		    server_text(c, text, sizeof text));
	case MAILIMAP_ERROR_BAD_STATE:
		return err_set(err, false, "imap: %s: not allowed in this state",
		    what);
	default:                                   /* a NO reply */
		return err_set(err, reply_is_temp(c), "imap: %s refused: %s",
		    what, server_text(c, text, sizeof text));
	}
}

static int
usable(struct imap_conn *c, struct err *err)
{
	if (c->broken)
		return err_set(err, true,
		    "imap: connection to %s:%u is broken; reconnect", c->host,
		    c->port);
	return 0;
}

/* ------------------------------------------------------------ session */

int
imap_open(const struct imap_opts *opts, struct imap_conn **c_r,
    struct err *err)
{
	struct imap_conn *c = NULL;
	mailstream_low *low = NULL;
	mailstream *stream = NULL;
	long timeout_s;
	int r, ret = -1;

	*c_r = NULL;
	if (opts->host == NULL || opts->host[0] == '\0' ||
	    strlen(opts->host) > 253)
		return err_set(err, false, "imap: bad host");
	if (opts->port > 65535)
		return err_set(err, false, "imap: bad port %u", opts->port);
	if (opts->username == NULL || opts->password == NULL)
		return err_set(err, false, "imap: username and password needed");
	if (opts->tls != IMAP_TLS_IMPLICIT && opts->tls != IMAP_TLS_STARTTLS &&
	    opts->tls != IMAP_TLS_NONE)
		return err_set(err, false, "imap: bad tls mode");

	timeout_s = opts->timeout_s > 0 ? opts->timeout_s : LIMIT_IMAP_TIMEOUT_S;
	if (timeout_s > 3600)
		timeout_s = 3600;
	c = xcalloc(1, sizeof *c);
	c->net.fd = -1;
	c->host = xstrdup(opts->host);
	c->port = opts->port != 0 ? opts->port :
	    opts->tls == IMAP_TLS_IMPLICIT ? 993 : 143;
	c->timeout_ms = (int)timeout_s * 1000;
	c->net.timeout_ms = c->timeout_ms;
	budget(c, LIMIT_IMAP_REPLY);

	if (net_connect(&c->net, c->host, c->port, err) < 0)
		goto out;
	if (opts->tls == IMAP_TLS_IMPLICIT &&
	    net_start_tls(&c->net, c->host, opts->ca_file, err) < 0)
		goto out;

	low = mailstream_low_new(&c->net, &net_driver);
	if (low == NULL) {
		err_set(err, true, "imap: out of memory");
		goto out;
	}
	stream = mailstream_new(low, IMAP_STREAM_BUF);
	if (stream == NULL) {
		mailstream_low_free(low);        /* the socket stays in c->net */
		err_set(err, true, "imap: out of memory");
		goto out;
	}
	c->imap = mailimap_new(0, NULL);
	if (c->imap == NULL) {
		mailstream_close(stream);
		err_set(err, true, "imap: out of memory");
		goto out;
	}
	/* From here the session owns the stream, even if this fails. */
	r = mailimap_connect(c->imap, stream);
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED &&
	    r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
		fail(c, r, "greeting", err);
		c->broken = true;               /* no LOGOUT to a bad greeting */
		goto out;
	}
	if (opts->tls == IMAP_TLS_STARTTLS) {
		if (r == MAILIMAP_NO_ERROR_AUTHENTICATED) {
			err_set(err, false,
			    "imap: %s sent PREAUTH: STARTTLS impossible", c->host);
			goto out;
		}
		budget(c, LIMIT_IMAP_REPLY);
		r = mailimap_starttls(c->imap);
		if (r != MAILIMAP_NO_ERROR) {
			fail(c, r, "STARTTLS", err);
			goto out;
		}
		/* Bytes already buffered arrived in plaintext after our
		 * STARTTLS: someone in the middle injected them. */
		if (c->imap->imap_stream->read_buffer_len != 0) {
			c->broken = true;
			err_set(err, false,
			    "imap: %s sent plaintext after STARTTLS", c->host);
			goto out;
		}
		if (net_start_tls(&c->net, c->host, opts->ca_file, err) < 0) {
			c->broken = true;
			goto out;
		}
		/* Capabilities seen before TLS are not to be trusted; the
		 * LOGIN reply brings fresh ones (or a later CAPABILITY). */
	}
	if (r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
		const char *what = "LOGIN";

		budget(c, LIMIT_IMAP_REPLY);
		switch (opts->auth) {
		case IMAP_AUTH_PLAIN:
			what = "AUTHENTICATE PLAIN";
			r = mailimap_authenticate(c->imap, "PLAIN", c->host, NULL,
			    NULL, opts->username, opts->username,
			    opts->password, NULL);
			break;
		case IMAP_AUTH_XOAUTH2:
			what = "AUTHENTICATE XOAUTH2";
			r = mailimap_oauth2_authenticate(c->imap, opts->username,
			    opts->password);
			break;
		default:
			r = mailimap_login(c->imap, opts->username,
			    opts->password);
			break;
		}
		if (r != MAILIMAP_NO_ERROR) {
			fail(c, r, what, err);
			goto out;
		}
	}
	*c_r = c;
	c = NULL;
	ret = 0;
out:
	imap_close(&c);
	return ret;
}

int
imap_select(struct imap_conn *c, const char *mailbox, uint32_t *uidvalidity_r,
    uint32_t *uidnext_r, struct err *err)
{
	const struct mailimap_selection_info *info;
	size_t len;
	int r;

	*uidvalidity_r = 0;
	*uidnext_r = 0;
	if (usable(c, err) < 0)
		return -1;
	len = mailbox != NULL ? strlen(mailbox) : 0;
	if (len == 0 || len > LIMIT_IMAP_MAILBOX ||
	    strpbrk(mailbox, "\r\n") != NULL)
		return err_set(err, false, "imap: bad mailbox name");
	c->selected = false;
	budget(c, LIMIT_IMAP_REPLY);
	r = mailimap_select(c->imap, mailbox);
	if (r != MAILIMAP_NO_ERROR)
		return fail(c, r, "SELECT", err);
	info = c->imap->imap_selection_info;
	if (info == NULL || info->sel_uidvalidity == 0)
		return err_set(err, false, "imap: SELECT: no UIDVALIDITY from %s",
		    c->host);
	*uidvalidity_r = info->sel_uidvalidity;
	*uidnext_r = info->sel_uidnext;
	c->selected = true;
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* UID SEARCH of UIDs lo..hi (hi 0: "*"), only \Seen-less ones when unseen.
 * Results below lo dropped ("n:*" always matches the highest UID). */
static int
uid_search(struct imap_conn *c, uint32_t lo, uint32_t hi, bool unseen,
    size_t max_count, uint32_t **uids_r, size_t *n_r, struct err *err)
{
	struct mailimap_search_key *key = NULL, *k_uid, *k_unseen;
	struct mailimap_set *set;
	clist *result = NULL;
	clistiter *it;
	uint32_t *uids = NULL;
	size_t n = 0;
	int r;

	*uids_r = NULL;
	*n_r = 0;
	if (usable(c, err) < 0)
		return -1;
	if (!c->selected)
		return err_set(err, false, "imap: UID SEARCH: no mailbox selected");
	if (max_count == 0)
		return err_set(err, false, "imap: UID SEARCH: max_count is 0");

	set = mailimap_set_new_interval(lo, hi);
	if (set == NULL)
		return err_set(err, true, "imap: out of memory");
	k_uid = mailimap_search_key_new_uid(set);
	if (k_uid == NULL) {
		mailimap_set_free(set);
		return err_set(err, true, "imap: out of memory");
	}
	if (!unseen) {
		key = k_uid;
	} else {
		key = mailimap_search_key_new_multiple_empty();
		k_unseen = mailimap_search_key_new(MAILIMAP_SEARCH_KEY_UNSEEN,
		    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
		    NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL,
		    0, NULL, NULL, NULL);
		if (key == NULL || k_unseen == NULL ||
		    mailimap_search_key_multiple_add(key, k_uid) !=
		    MAILIMAP_NO_ERROR) {
			if (key != NULL)
				mailimap_search_key_free(key);
			if (k_unseen != NULL)
				mailimap_search_key_free(k_unseen);
			mailimap_search_key_free(k_uid);
			return err_set(err, true, "imap: out of memory");
		}
		if (mailimap_search_key_multiple_add(key, k_unseen) !=
		    MAILIMAP_NO_ERROR) {
			mailimap_search_key_free(key);
			mailimap_search_key_free(k_unseen);
			return err_set(err, true, "imap: out of memory");
		}
	}
	budget(c, LIMIT_IMAP_REPLY);
	r = mailimap_uid_search(c->imap, NULL, key, &result);
	mailimap_search_key_free(key);             /* frees the rest */
	if (r != MAILIMAP_NO_ERROR)
		return fail(c, r, "UID SEARCH", err);

	if (result != NULL && clist_count(result) > 0) {
		uids = xcalloc((size_t)clist_count(result), sizeof *uids);
		for (it = clist_begin(result); it != NULL; it = clist_next(it)) {
			const uint32_t *u = clist_content(it);
			if (u != NULL && *u >= lo && (hi == 0 || *u <= hi))
				uids[n++] = *u;
		}
	}
	if (result != NULL)
		mailimap_search_result_free(result);
	if (n == 0) {
		free(uids);
		return 0;
	}
	qsort(uids, n, sizeof *uids, cmp_u32);
	*uids_r = uids;
	*n_r = n < max_count ? n : max_count;
	return 0;
}

int
imap_uids_after(struct imap_conn *c, uint32_t last_uid, size_t max_count,
    uint32_t **uids_r, size_t *n_r, struct err *err)
{
	*uids_r = NULL;
	*n_r = 0;
	if (last_uid == UINT32_MAX)
		return usable(c, err);
	return uid_search(c, last_uid + 1, 0, false, max_count, uids_r, n_r,
	    err);
}

int
imap_uids_upto(struct imap_conn *c, uint32_t last_uid, bool unseen,
    size_t max_count, uint32_t **uids_r, size_t *n_r, struct err *err)
{
	*uids_r = NULL;
	*n_r = 0;
	if (last_uid == 0)
		return usable(c, err);
	return uid_search(c, 1, last_uid, unseen, max_count, uids_r, n_r, err);
}

/* The static attribute of the given type in one FETCH response, or NULL. */
static const struct mailimap_msg_att_static *
att_static(const struct mailimap_msg_att *att, int type)
{
	clistiter *it;

	for (it = clist_begin(att->att_list); it != NULL; it = clist_next(it)) {
		const struct mailimap_msg_att_item *item = clist_content(it);

		if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
		    item->att_data.att_static != NULL &&
		    item->att_data.att_static->att_type == type)
			return item->att_data.att_static;
	}
	return NULL;
}

/* The FETCH response for uid among fetched (other messages' unsolicited
 * updates may be there too), or NULL. */
static const struct mailimap_msg_att *
att_for_uid(clist *fetched, uint32_t uid)
{
	clistiter *it;

	if (fetched == NULL)
		return NULL;
	for (it = clist_begin(fetched); it != NULL; it = clist_next(it)) {
		const struct mailimap_msg_att *att = clist_content(it);
		const struct mailimap_msg_att_static *st =
		    att_static(att, MAILIMAP_MSG_ATT_UID);

		if (st != NULL && st->att_data.att_uid == uid)
			return att;
	}
	return NULL;
}

/* The BODY[...] bytes of uid in fetched: 1 and *p_r, *len_r set; 0 uid
 * is not there (expunged); -1 its response has no body section. */
static int
section_of(clist *fetched, uint32_t uid, const char **p_r, size_t *len_r)
{
	const struct mailimap_msg_att *att = att_for_uid(fetched, uid);
	const struct mailimap_msg_att_static *st;

	if (att == NULL)
		return 0;
	st = att_static(att, MAILIMAP_MSG_ATT_BODY_SECTION);
	if (st == NULL || st->att_data.att_body_section == NULL ||
	    st->att_data.att_body_section->sec_body_part == NULL)
		return -1;
	*p_r = st->att_data.att_body_section->sec_body_part;
	*len_r = st->att_data.att_body_section->sec_length;
	return 1;
}

/* UID FETCH set (UID <what...>): set and the n atts are consumed. 0 and
 * *fetched_r set (maybe empty), or -1. */
static int
uid_fetch_set(struct imap_conn *c, struct mailimap_set *set,
    struct mailimap_fetch_att **what, size_t n, size_t reply_budget,
    clist **fetched_r, const char *name, struct err *err)
{
	struct mailimap_fetch_type *ft = NULL;
	struct mailimap_fetch_att *uid_att = NULL;
	bool oom = false;
	int r, ret = -1;

	*fetched_r = NULL;
	ft = mailimap_fetch_type_new_fetch_att_list_empty();
	uid_att = mailimap_fetch_att_new_uid();
	if (ft == NULL || uid_att == NULL || set == NULL)
		oom = true;
	else if (mailimap_fetch_type_new_fetch_att_list_add(ft, uid_att) !=
	    MAILIMAP_NO_ERROR)
		oom = true;
	else
		uid_att = NULL;                     /* ft owns it */
	for (size_t i = 0; i < n; i++) {
		if (!oom && what[i] != NULL &&
		    mailimap_fetch_type_new_fetch_att_list_add(ft, what[i]) ==
		    MAILIMAP_NO_ERROR) {
			what[i] = NULL;
			continue;
		}
		oom = true;
		if (what[i] != NULL)
			mailimap_fetch_att_free(what[i]);
		what[i] = NULL;
	}
	if (oom) {
		err_set(err, true, "imap: out of memory");
		goto out;
	}
	budget(c, reply_budget);
	r = mailimap_uid_fetch(c->imap, set, ft, fetched_r);
	if (r != MAILIMAP_NO_ERROR) {
		*fetched_r = NULL;
		fail(c, r, name, err);
		goto out;
	}
	ret = 0;
out:
	if (uid_att != NULL)
		mailimap_fetch_att_free(uid_att);
	if (ft != NULL)
		mailimap_fetch_type_free(ft);
	if (set != NULL)
		mailimap_set_free(set);
	return ret;
}

/* UID FETCH uid (UID <what>). 0 and *fetched_r set (maybe empty), or -1. */
static int
uid_fetch(struct imap_conn *c, uint32_t uid, struct mailimap_fetch_att *what,
    size_t reply_budget, clist **fetched_r, const char *name, struct err *err)
{
	return uid_fetch_set(c, mailimap_set_new_single(uid), &what, 1,
	    reply_budget, fetched_r, name, err);
}

/* A UID set of uids[n] (ascending), runs folded into intervals; NULL when
 * out of memory. */
static struct mailimap_set *
uid_set(const uint32_t *uids, size_t n)
{
	struct mailimap_set *set = mailimap_set_new_empty();

	for (size_t i = 0; set != NULL && i < n;) {
		size_t j = i;

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if ((j == i ? mailimap_set_add_single(set, uids[i]) :
		    mailimap_set_add_interval(set, uids[i], uids[j])) !=
		    MAILIMAP_NO_ERROR) {
			mailimap_set_free(set);
			return NULL;
		}
		i = j + 1;
	}
	return set;
}

/* An IMAP date-time as unix seconds. */
static int64_t
date_time_unix(const struct mailimap_date_time *d)
{
	struct tm tm = {
		.tm_year = d->dt_year - 1900, .tm_mon = d->dt_month - 1,
		.tm_mday = d->dt_day, .tm_hour = d->dt_hour,
		.tm_min = d->dt_min, .tm_sec = d->dt_sec,
	};
	int zone = d->dt_zone;          /* +-hhmm as a number */
	int64_t off = (int64_t)(zone / 100) * 3600 + (int64_t)(zone % 100) * 60;

	return (int64_t)timegm(&tm) - off;
}

/* The checks of a command on uids[n] of the selected mailbox: -1 err set,
 * 0 nothing to do (n is 0), 1 go on. */
static int
batch_ok(struct imap_conn *c, size_t n, const char *what, struct err *err)
{
	if (usable(c, err) < 0)
		return -1;
	if (!c->selected)
		return err_set(err, false, "imap: %s: no mailbox selected", what);
	if (n > LIMIT_IMAP_BATCH)
		return err_set(err, false, "imap: %s: over %d UIDs at once", what,
		    LIMIT_IMAP_BATCH);
	return n > 0;
}

int
imap_list(struct imap_conn *c, const uint32_t *uids, size_t n,
    struct imap_msg *out, size_t *nout_r, struct err *err)
{
	struct mailimap_fetch_att *what[2];
	clist *fetched = NULL;
	size_t k = 0;
	int r;

	*nout_r = 0;
	r = batch_ok(c, n, "FETCH", err);
	if (r <= 0)
		return r;
	what[0] = mailimap_fetch_att_new_rfc822_size();
	what[1] = mailimap_fetch_att_new_internaldate();
	if (uid_fetch_set(c, uid_set(uids, n), what, 2, LIMIT_IMAP_REPLY,
	    &fetched, "UID FETCH RFC822.SIZE", err) < 0)
		return -1;
	/* In the order asked (ascending), whatever order the server used. */
	for (size_t i = 0; i < n; i++) {
		const struct mailimap_msg_att *att = att_for_uid(fetched, uids[i]);
		const struct mailimap_msg_att_static *sz, *dt;

		if (att == NULL)
			continue;                   /* expunged */
		sz = att_static(att, MAILIMAP_MSG_ATT_RFC822_SIZE);
		dt = att_static(att, MAILIMAP_MSG_ATT_INTERNALDATE);
		if (sz == NULL) {
			mailimap_fetch_list_free(fetched);
			return err_set(err, false,
			    "imap: UID %u: no RFC822.SIZE from %s", uids[i],
			    c->host);
		}
		out[k].uid = uids[i];
		out[k].size = sz->att_data.att_rfc822_size;
		out[k].internal_date = dt != NULL &&
		    dt->att_data.att_internal_date != NULL ?
		    date_time_unix(dt->att_data.att_internal_date) : 0;
		k++;
	}
	mailimap_fetch_list_free(fetched);
	*nout_r = k;
	return 0;
}

int
imap_fetch_many(struct imap_conn *c, const uint32_t *uids, size_t n,
    size_t total, imap_body_fn fn, void *arg, struct err *err)
{
	struct mailimap_fetch_att *what;
	clist *fetched = NULL;
	size_t room;
	int r, ret = -1;

	r = batch_ok(c, n, "FETCH", err);
	if (r <= 0)
		return r;
	room = total + n * LIMIT_IMAP_FETCH_LINE + LIMIT_IMAP_FETCH_SLACK;
	if (total > LIMIT_IMAP_REPLY)
		return err_set(err, false, "imap: FETCH: %zu bytes at once is "
		    "over the %d limit", total, LIMIT_IMAP_REPLY);
	what = mailimap_fetch_att_new_body_peek_section(mailimap_section_new(NULL));
	if (uid_fetch_set(c, uid_set(uids, n), &what, 1, room, &fetched,
	    "UID FETCH BODY.PEEK[]", err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *p;
		size_t len;
		r = section_of(fetched, uids[i], &p, &len);
		if (r == 0)
			continue;                   /* expunged meanwhile */
		if (r < 0) {
			err_set(err, false, "imap: UID %u: no body from %s",
			    uids[i], c->host);
			goto out;
		}
		if (fn(arg, uids[i], p, len, err) < 0)
			goto out;
	}
	ret = 0;
out:
	mailimap_fetch_list_free(fetched);
	return ret;
}

int
imap_fetch_header(struct imap_conn *c, uint32_t uid, struct buf *out,
    struct err *err)
{
	clist *fetched = NULL;
	const char *p;
	size_t len;
	int ret = -1;

	if (usable(c, err) < 0)
		return -1;
	if (!c->selected)
		return err_set(err, false, "imap: FETCH: no mailbox selected");
	if (uid_fetch(c, uid, mailimap_fetch_att_new_body_peek_section(
	    mailimap_section_new_header()), LIMIT_PARSE_HEADER +
	    LIMIT_IMAP_FETCH_SLACK, &fetched, "UID FETCH BODY.PEEK[HEADER]",
	    err) < 0)
		return -1;
	ret = section_of(fetched, uid, &p, &len);
	if (ret <= 0) {
		if (ret < 0)
			err_set(err, false, "imap: UID %u: no header from %s",
			    uid, c->host);
		goto out;
	}
	ret = -1;
	if (len > LIMIT_PARSE_HEADER || buf_add(out, p, len) < 0) {
		err_set(err, false, "imap: UID %u: header over %d bytes", uid,
		    LIMIT_PARSE_HEADER);
		goto out;
	}
	ret = 1;
out:
	mailimap_fetch_list_free(fetched);
	return ret;
}

/* The server's capabilities (asked once if LOGIN did not bring them). */
static bool
has_capability(struct imap_conn *c, const char *name)
{
	struct mailimap_capability_data *cap = NULL;

	if (c->imap->imap_connection_info == NULL ||
	    c->imap->imap_connection_info->imap_capability == NULL) {
		budget(c, LIMIT_IMAP_REPLY);
		if (mailimap_capability(c->imap, &cap) != MAILIMAP_NO_ERROR)
			return false;
		mailimap_capability_data_free(cap);
	}
	return mailimap_has_extension(c->imap, (char *)name) == 1;
}

bool
imap_can_idle(struct imap_conn *c)
{
	return !c->broken && has_capability(c, "IDLE");
}

int
imap_mark_done(struct imap_conn *c, const uint32_t *uids, size_t n,
    const char *move_to, struct err *err)
{
	int r;

	r = batch_ok(c, n, "STORE", err);
	if (r <= 0)
		return r;
	if (move_to != NULL && move_to[0] != '\0') {
		struct mailimap_set *set;

		if (strlen(move_to) > LIMIT_IMAP_MAILBOX ||
		    strpbrk(move_to, "\r\n") != NULL)
			return err_set(err, false, "imap: bad folder name");
		if (!has_capability(c, "MOVE"))
			return err_set(err, false, "imap: %s does not offer "
			    "MOVE (RFC 6851); leave [imap] processed_folder "
			    "empty to flag mail \\Seen instead", c->host);
		set = uid_set(uids, n);
		if (set == NULL)
			return err_set(err, true, "imap: out of memory");
		budget(c, LIMIT_IMAP_REPLY);
		r = mailimap_uid_move(c->imap, set, move_to);
		mailimap_set_free(set);
		if (r != MAILIMAP_NO_ERROR)
			return fail(c, r, "UID MOVE", err);
		return 0;
	} else {
		struct mailimap_flag_list *fl = mailimap_flag_list_new_empty();
		struct mailimap_flag *seen = mailimap_flag_new_seen();
		struct mailimap_store_att_flags *sa = NULL;
		struct mailimap_set *set = uid_set(uids, n);

		if (fl == NULL || seen == NULL || set == NULL ||
		    mailimap_flag_list_add(fl, seen) != MAILIMAP_NO_ERROR) {
			if (seen != NULL)
				mailimap_flag_free(seen);
			if (fl != NULL)
				mailimap_flag_list_free(fl);
			if (set != NULL)
				mailimap_set_free(set);
			return err_set(err, true, "imap: out of memory");
		}
		sa = mailimap_store_att_flags_new_add_flags_silent(fl);
		if (sa == NULL) {
			mailimap_flag_list_free(fl);
			mailimap_set_free(set);
			return err_set(err, true, "imap: out of memory");
		}
		budget(c, LIMIT_IMAP_REPLY);
		r = mailimap_uid_store(c->imap, set, sa);
		mailimap_store_att_flags_free(sa);
		mailimap_set_free(set);
		if (r != MAILIMAP_NO_ERROR)
			return fail(c, r, "UID STORE", err);
		return 0;
	}
}

int
imap_idle(struct imap_conn *c, int max_ms, int wake_fd, struct err *err)
{
	struct pollfd pfd[2];
	int r, woke = 0, saved = c->net.timeout_ms;

	if (usable(c, err) < 0)
		return -1;
	if (!c->selected)
		return err_set(err, false, "imap: IDLE: no mailbox selected");
	budget(c, LIMIT_IMAP_REPLY);
	r = mailimap_idle(c->imap);
	if (r != MAILIMAP_NO_ERROR)
		return fail(c, r, "IDLE", err);
	/* Something already buffered (libetpan's or GnuTLS's) counts as
	 * activity; else wait on the socket. */
	if (c->imap->imap_stream->read_buffer_len > 0 ||
	    (c->net.tls != NULL &&
	    gnutls_record_check_pending(c->net.tls) > 0)) {
		woke = 1;
	} else {
		pfd[0] = (struct pollfd){ .fd = c->net.fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = wake_fd, .events = POLLIN };
		r = poll(pfd, wake_fd >= 0 ? 2 : 1, max_ms);
		if (r < 0 && errno != EINTR) {
			c->broken = true;
			return err_set_errno(err, true, errno, "imap: IDLE: poll");
		}
		woke = r > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR));
	}
	/* DONE, and the tagged reply; untagged EXISTS lines are parsed
	 * (and dropped) on the way. */
	c->net.timeout_ms = saved;
	budget(c, LIMIT_IMAP_REPLY);
	r = mailimap_idle_done(c->imap);
	if (r != MAILIMAP_NO_ERROR)
		return fail(c, r, "IDLE DONE", err);
	return woke;
}

int
imap_fetch(struct imap_conn *c, uint32_t uid, size_t max_size,
    struct buf *out, struct err *err)
{
	const struct mailimap_msg_att *att;
	const struct mailimap_msg_att_static *st;
	clist *fetched = NULL;
	size_t size, room;
	int ret = -1;

	if (usable(c, err) < 0)
		return -1;
	if (!c->selected)
		return err_set(err, false, "imap: FETCH: no mailbox selected");
	if (uid == 0)
		return err_set(err, false, "imap: FETCH: UID 0");
	room = out->cap > out->len ? out->cap - out->len : 0;

	/* 1. The size, so an oversized message is never transferred. */
	if (uid_fetch(c, uid, mailimap_fetch_att_new_rfc822_size(),
	    LIMIT_IMAP_REPLY, &fetched, "UID FETCH RFC822.SIZE", err) < 0)
		goto out;
	att = att_for_uid(fetched, uid);
	if (att == NULL) {
		ret = 0;                            /* expunged */
		goto out;
	}
	st = att_static(att, MAILIMAP_MSG_ATT_RFC822_SIZE);
	if (st == NULL) {
		err_set(err, false, "imap: UID %u: no RFC822.SIZE from %s", uid,
		    c->host);
		goto out;
	}
	size = st->att_data.att_rfc822_size;
	if (size > max_size || size > room) {
		err_set(err, false, "imap: UID %u is %zu bytes, over the %zu limit",
		    uid, size, max_size < room ? max_size : room);
		goto out;
	}
	mailimap_fetch_list_free(fetched);
	fetched = NULL;

	/* 2. The bytes. The budget stops a server whose literal is bigger
	 * than the size it announced. */
	if (uid_fetch(c, uid,
	    mailimap_fetch_att_new_body_peek_section(mailimap_section_new(NULL)),
	    size + LIMIT_IMAP_FETCH_SLACK, &fetched, "UID FETCH BODY.PEEK[]",
	    err) < 0)
		goto out;
	{
		const char *p;
		int r = section_of(fetched, uid, &p, &size);

		if (r <= 0) {
			if (r == 0)
				ret = 0;            /* expunged meanwhile */
			else
				err_set(err, false, "imap: UID %u: no body from "
				    "%s", uid, c->host);
			goto out;
		}
		if (size > max_size || buf_add(out, p, size) < 0) {
			err_set(err, false, "imap: UID %u is %zu bytes, over "
			    "the %zu limit", uid, size, max_size < room ?
			    max_size : room);
			goto out;
		}
	}
	ret = 1;
out:
	if (fetched != NULL)
		mailimap_fetch_list_free(fetched);
	return ret;
}

int
imap_opts_from_cfg(struct imap_opts *o, const struct cfg *cfg, char *secret,
    struct err *err)
{
	memset(o, 0, sizeof *o);
	o->host = cfg->imap.host;
	o->port = (unsigned)cfg->imap.port;
	o->tls = strcmp(cfg->imap.tls, "starttls") == 0 ? IMAP_TLS_STARTTLS :
	    strcmp(cfg->imap.tls, "none") == 0 ? IMAP_TLS_NONE :
	    IMAP_TLS_IMPLICIT;
	o->ca_file = cfg->imap.ca_file[0] != '\0' ? cfg->imap.ca_file : NULL;
	o->username = cfg->imap.username;
	o->password = cfg->imap.password;
	o->auth = strcmp(cfg->imap.auth, "plain") == 0 ? IMAP_AUTH_PLAIN :
	    strcmp(cfg->imap.auth, "xoauth2") == 0 ? IMAP_AUTH_XOAUTH2 :
	    IMAP_AUTH_LOGIN;
	o->timeout_s = cfg->imap.timeout_s;
	if (cfg->imap.password_file[0] != '\0') {
		if (cfg_read_secret("imap.password_file",
		    cfg->imap.password_file, secret, IMAP_SECRET_MAX, err) < 0)
			return -1;
		o->password = secret;
	}
	return 0;
}

void
imap_close(struct imap_conn **cp)
{
	struct imap_conn *c = *cp;

	if (c == NULL)
		return;
	if (c->imap != NULL) {
		if (c->imap->imap_stream != NULL) {
			if (c->broken) {
				/* mailimap_free() would send LOGOUT. */
				mailstream_close(c->imap->imap_stream);
				c->imap->imap_stream = NULL;
			} else {
				c->net.timeout_ms = c->timeout_ms <
				    LIMIT_IMAP_LOGOUT_MS ? c->timeout_ms :
				    LIMIT_IMAP_LOGOUT_MS;
				budget(c, LIMIT_IMAP_REPLY);
				(void)mailimap_logout(c->imap); /* closes */
			}
		}
		mailimap_free(c->imap);
	}
	net_shut(&c->net);
	if (c->net.cred != NULL)
		gnutls_certificate_free_credentials(c->net.cred);
	free(c->host);
	free(c);
	*cp = NULL;
}
