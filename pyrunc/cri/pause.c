/*
 * pyrunc-pause: the process of a pod's pause container.
 *
 * pyrunc-cri binds it read-only at /pause in the pause rootfs and runs
 * it to hold the pod's namespaces. It sleeps in pause(2) until SIGINT
 * or SIGTERM, then exits 0. As pid 1 of the pod's PID namespace (when
 * the pod shares one) it reaps the orphans the pod's containers leave,
 * so that they do not stay zombies. It starts nothing itself: nothing
 * but the pod's own processes shows in a shared PID namespace.
 *
 * The kernel gives pid 1 of a namespace only the signals it handles,
 * and SIGKILL from outside; StopPodSandbox sends SIGKILL.
 *
 * Built static by setup.py, so that it runs in an empty rootfs.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_child(int sig)
{
	int saved = errno;

	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		puts("pyrunc-pause");
		return 0;
	}

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	if (sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGTERM, &sa, NULL) < 0) {
		perror("pause: sigaction");
		return 1;
	}

	sa.sa_handler = on_child;
	sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
	if (sigaction(SIGCHLD, &sa, NULL) < 0) {
		perror("pause: sigaction SIGCHLD");
		return 1;
	}

	/* Children that exited before the handler was in place. */
	on_child(SIGCHLD);

	for (;;)
		pause();
}
