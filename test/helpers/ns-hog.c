/*
 * ns-hog: what a hostile workload does to a node's mount namespaces, for the agent's fault tests. Run
 * inside a test container: drops to an unprivileged user (65534), then creates <count> processes, each in
 * a user and mount namespace of its own (as `unshare -Urm` does), whose mount tables are copies of the
 * container's, lxcfs files included. The processes share the hog's memory (CLONE_VM) and sleep, so
 * thousands cost a few kernel pages each; they die with the hog (PR_SET_PDEATHSIG) or the container.
 * Prints "ready <count>" once all exist, then sleeps until killed.
 *
 *   ns-hog <count>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define STACK_SIZE (16 * 1024)

static int sleeper(void *arg)
{
	(void)arg;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;)
		pause();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: ns-hog <count>\n");
		return 2;
	}
	long count = strtol(argv[1], NULL, 10);
	if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0) {
		fprintf(stderr, "ns-hog: dropping to user 65534: %s\n", strerror(errno));
		return 1;
	}
	char *stacks = malloc((size_t)count * STACK_SIZE);
	if (!stacks) {
		fprintf(stderr, "ns-hog: no memory for %ld stacks\n", count);
		return 1;
	}
	for (long i = 0; i < count; i++) {
		char *top = stacks + (size_t)(i + 1) * STACK_SIZE;
		if (clone(sleeper, top, CLONE_VM | CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD, NULL) < 0) {
			fprintf(stderr, "ns-hog: namespace %ld: %s\n", i + 1, strerror(errno));
			return 1;
		}
	}
	printf("ready %ld\n", count);
	fflush(stdout);
	for (;;)
		pause();
}
