/*
 * A pre-fork TCP server: the root binds a listener on 127.0.0.1 (port 0)
 * and forks 2 workers that share it, the way nginx or Apache workers do.
 *
 * Verified after SIGTERM, by the root, one worker at a time: it sends the
 * worker SIGTERM, connects to the listener, and only that worker (the
 * other still waits for its signal) accepts and answers with its number;
 * the worker's listener has the port the root saw at setup. Every worker
 * exits 0.
 */
#include "tree.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define NWORKERS 2

static int lfd;
static struct sockaddr_in at;

static void __attribute__((noreturn)) worker(int i)
{
	struct sockaddr_in now;
	socklen_t l = sizeof(now);
	char b = '0' + i;
	int c;

	tr_set_who("worker %d", i);
	tr_sync_send(i);
	tr_wait_term();
	TCHECK(getsockname(lfd, (struct sockaddr *)&now, &l) == 0 &&
		       now.sin_port == at.sin_port,
	       "listener lost its port");
	c = accept(lfd, NULL, NULL);
	TCHECK(c >= 0, "accept: %s", strerror(errno));
	if (c >= 0) {
		TCHECK(write(c, &b, 1) == 1, "write: %s", strerror(errno));
		/* The client closes first: its end keeps TIME_WAIT, so the
		 * listener's port can be bound again without SO_REUSEADDR. */
		TCHECK(read(c, &b, 1) == 0, "no end of file from the client");
		close(c);
	}
	tr_exit();
}

int main(void)
{
	pid_t kids[NWORKERS];
	socklen_t l = sizeof(at);

	tr_block_term();
	tr_sync_open();
	lfd = SYS(socket(AF_INET, SOCK_STREAM, 0));
	at.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &at.sin_addr);
	SYS(bind(lfd, (struct sockaddr *)&at, sizeof(at)));
	SYS(getsockname(lfd, (struct sockaddr *)&at, &l));
	SYS(listen(lfd, 16));
	for (int i = 0; i < NWORKERS; i++)
		if ((kids[i] = tr_fork()) == 0)
			worker(i);
	tr_sync_recv(NWORKERS, NULL);
	wl_note("listening on port %d", ntohs(at.sin_port));
	wl_ready_sigwait(NULL, NULL);

	for (int i = 0; i < NWORKERS; i++) {
		char who[16], b = 0;
		int c = SYS(socket(AF_INET, SOCK_STREAM, 0));

		snprintf(who, sizeof(who), "worker %d", i);
		kill(kids[i], SIGTERM);
		TCHECK(connect(c, (struct sockaddr *)&at, sizeof(at)) == 0, "connect: %s",
		       strerror(errno));
		TCHECK(read(c, &b, 1) == 1 && b == '0' + i, "%s did not answer (got '%c')", who, b);
		close(c);
		tr_reap(kids[i], who, 0);
	}
	tr_check_no_children();
	wl_verdict();
}
