/*
 * lxcfs-remount: the node agent's native helper for the mount operations Node.js cannot do itself.
 *
 * Node.js is multi-threaded, and the kernel refuses setns(CLONE_NEWNS) to multi-threaded processes, so
 * entering a container's mount namespace needs a separate single-threaded process. The classic mount(2)
 * API cannot bind a file from one namespace into another either; the new mount API can: a detached
 * clone made with open_tree(OPEN_TREE_CLONE) in the agent's namespace is attached inside the container
 * with move_mount() after setns(). Nothing is needed inside the container image.
 *
 * Every result is one JSON object per line on stdout; failures name the step and the errno.
 *
 *   lxcfs-remount check                      does the kernel have the new mount API?
 *   lxcfs-remount read <file>                read a file (a liveness probe through FUSE)
 *   lxcfs-remount probe <file>               runs until stdin ends: for each line read from it, one
 *                                            read of <file> at offset 0 (opened at the first line and
 *                                            kept open), answered with one result line
 *   lxcfs-remount tmpfs <dir> <options>      mount a tmpfs on <dir>
 *   lxcfs-remount bind <source> <target>     bind <source> onto <target> (same namespace)
 *   lxcfs-remount detach <path>              lazily unmount the top mount at <path>
 *   A namespace is always named by the process the agent chose for it, "<proc>/<pid> <start time>
 *   <mnt:[inode]>": its pid, its start time (field 22 of its stat) and the mount namespace it was seen
 *   in. Nothing is done unless that very process is still there, in that namespace, and the namespace
 *   is not the host's (see "identity" below).
 *
 *   lxcfs-remount swap --ns <proc>/<pid> <start time> <mnt:[inode]> <source> <target> ro|rw replace|attach [...] [--ns ...]
 *       For each namespace, in a child process: check the process, clone every <source> in our
 *       namespace, then enter the namespace and root of the process and put each clone at <target>.
 *       "replace": a dead lxcfs mount is on <target> (swap it atomically with MOVE_MOUNT_BENEATH where
 *       the kernel has it, otherwise detach it and attach); "attach": nothing of ours is there.
 *   lxcfs-remount peek --ns <proc>/<pid> <start time> <mnt:[inode]> <target>... [--ns ...]
 *       For each namespace, in a child process: check the process, enter its namespace and read one
 *       byte of each <target>, as the container's processes would, so a dead file shows up whatever
 *       mountinfo says.
 *   lxcfs-remount watch <proc>
 *       Runs until stdin ends, reading commands from it, one per line: "add <mnt:[inode]> <pid> <start
 *       time>" watches that mount namespace through the process (replacing a watch of the same
 *       namespace), "remove <mnt:[inode]>" stops watching. Prints {"event":"added"} (ok with the
 *       namespace, or the failed step and errno) for each add, {"event":"changed"} when that namespace's
 *       mount table changed, {"event":"gone"} when the process exited (the watch is then dropped); each
 *       with key (the namespace) and pid.
 *   lxcfs-remount cgroups <dir>
 *       Runs until stdin ends: watches <dir> (a cgroup hierarchy) and every directory below it with
 *       inotify. Prints {"event":"ready"} once every directory found is watched (with ok, the number
 *       watched, or the failed step and errno), {"event":"created","path":...} for each cgroup created
 *       below <dir>, {"event":"overflow"} when the kernel dropped events (every directory is walked
 *       again), and {"event":"incomplete"} (step, errno) when a directory could not be watched.
 *
 * LXCFS_REMOUNT_EMULATE_OLD_KERNEL=1 makes swap behave as on a kernel without MOVE_MOUNT_BENEATH (< 6.5)
 * and without mount_setattr (< 5.12), so the fallbacks are exercised on a new kernel too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Older C libraries lack the new mount API: the numbers are the same on every architecture. */
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_BENEATH
#define MOVE_MOUNT_BENEATH 0x00000200
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
#ifndef UMOUNT_NOFOLLOW
#define UMOUNT_NOFOLLOW 0x8
#endif

/* The kernel's struct mount_attr, under our own name so it cannot clash with a C library's copy. */
struct helper_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

static int sys_open_tree(int dfd, const char *path, unsigned int flags)
{
	return (int)syscall(SYS_open_tree, dfd, path, flags);
}

static int sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to, unsigned int flags)
{
	return (int)syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

static int sys_mount_setattr(int dfd, const char *path, unsigned int flags, struct helper_mount_attr *attr)
{
	return (int)syscall(SYS_mount_setattr, dfd, path, flags, attr, sizeof(*attr));
}

/* ---- JSON lines ---------------------------------------------------------------------------------- */

struct line {
	char buf[16384];
	size_t len;
	int fields;
};

static void put_raw(struct line *l, const char *s, size_t n)
{
	if (l->len + n >= sizeof(l->buf) - 3)
		n = sizeof(l->buf) - 3 - l->len; /* leave room for "}\n" */
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void put_string(struct line *l, const char *s)
{
	put_raw(l, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put_raw(l, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put_raw(l, esc, 6);
		} else {
			put_raw(l, (const char *)&c, 1);
		}
	}
	put_raw(l, "\"", 1);
}

static void put_key(struct line *l, const char *key)
{
	put_raw(l, l->fields++ ? "," : "{", 1);
	put_string(l, key);
	put_raw(l, ":", 1);
}

static void field_str(struct line *l, const char *key, const char *value)
{
	put_key(l, key);
	put_string(l, value);
}

static void field_bool(struct line *l, const char *key, int value)
{
	put_key(l, key);
	put_raw(l, value ? "true" : "false", value ? 4 : 5);
}

static void field_long(struct line *l, const char *key, long value)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "%ld", value);
	put_key(l, key);
	put_raw(l, num, (size_t)n);
}

/* Records a failed step with the errno's name (ENOENT) and text. */
static void field_error(struct line *l, const char *step, int err)
{
	const char *name = strerrorname_np(err);
	field_bool(l, "ok", 0);
	field_str(l, "step", step);
	field_str(l, "errno", name ? name : "EUNKNOWN");
	field_str(l, "error", strerror(err));
}

/* One write(2) per line: no stdio buffer to duplicate across fork(), no interleaving in the pipe. */
static void emit(struct line *l)
{
	if (l->fields == 0)
		put_raw(l, "{", 1);
	memcpy(l->buf + l->len, "}\n", 2);
	l->len += 2;
	for (size_t off = 0; off < l->len;) {
		ssize_t n = write(STDOUT_FILENO, l->buf + off, l->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	l->len = 0;
	l->fields = 0;
}

static int emit_result(const char *step, int failed_errno)
{
	struct line l = {0};
	if (failed_errno)
		field_error(&l, step, failed_errno);
	else
		field_bool(&l, "ok", 1);
	emit(&l);
	return failed_errno ? 1 : 0;
}

/* ---- simple commands ----------------------------------------------------------------------------- */

static int cmd_check(void)
{
	struct line l = {0};
	int fd = sys_open_tree(AT_FDCWD, "/", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0) {
		field_error(&l, "open_tree", errno);
		emit(&l);
		return 1;
	}
	struct helper_mount_attr attr = {.propagation = MS_PRIVATE};
	int setattr_ok = sys_mount_setattr(fd, "", AT_EMPTY_PATH, &attr) == 0;
	close(fd);
	field_bool(&l, "ok", 1);
	field_bool(&l, "mountSetattr", setattr_ok);
	emit(&l);
	return 0;
}

static int cmd_read(const char *path)
{
	char buf[65536];
	ssize_t total = 0, n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return emit_result("open", errno);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	int err = n < 0 ? errno : 0;
	close(fd);
	if (err)
		return emit_result("read", err);
	struct line l = {0};
	field_bool(&l, "ok", 1);
	field_long(&l, "bytes", (long)total);
	emit(&l);
	return 0;
}

/*
 * The agent's probe. The file is held here, never by the agent: closing an lxcfs file sends lxcfs a
 * FLUSH, and every process the agent forks would close its copy at exec, hanging in exec (and the agent
 * waiting for it) while lxcfs hangs. This process forks nothing. A read of an lxcfs proc file at offset
 * 0 is answered afresh, so each probe costs lxcfs one request.
 */
static int cmd_probe(const char *path)
{
	char buf[8192];
	int fd = -1;
	for (;;) {
		char request[64];
		ssize_t got = read(STDIN_FILENO, request, sizeof(request));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return 0;
		for (ssize_t i = 0; i < got; i++) {
			if (request[i] != '\n')
				continue;
			if (fd < 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
				emit_result("open", errno);
				continue;
			}
			ssize_t n = pread(fd, buf, sizeof(buf), 0);
			if (n < 0) {
				emit_result("read", errno);
				continue;
			}
			struct line l = {0};
			field_bool(&l, "ok", 1);
			field_long(&l, "bytes", (long)n);
			emit(&l);
		}
	}
}

static int cmd_tmpfs(const char *dir, const char *options)
{
	if (mount("lxcfs-webhook", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options) < 0)
		return emit_result("mount", errno);
	return emit_result("", 0);
}

static int cmd_bind(const char *source, const char *target)
{
	int fd = sys_open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0)
		return emit_result("open_tree", errno);
	int rc = sys_move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
	int err = rc < 0 ? errno : 0;
	close(fd);
	return emit_result("move_mount", err);
}

static int cmd_detach(const char *path)
{
	if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
		return emit_result("umount2", errno);
	return emit_result("", 0);
}

/* ---- identity: never act on a namespace we did not choose ---------------------------------------- */

/*
 * Between the agent's survey and this helper, the process the agent chose may exit and its pid go to
 * another process, even one of the host: entering "/proc/<pid>/ns/mnt" by pid would then mount lxcfs
 * over the host's own files (and lxcfs, reading its own file, hangs every reader on the node). So:
 *  - <proc>/<pid> is opened once, as a directory. That descriptor is a pidfd in the kernel's sense
 *    (pidfd_send_signal accepts it): it stands for the process that had the pid when it was opened,
 *    and everything opened relative to it (stat, ns/mnt, root, mountinfo) is that process's, or fails
 *    once it has exited; a later owner of the pid is never reached through it. Unlike pidfd_open(2) it
 *    comes from the same procfs the agent surveyed, and needs no new kernel (setns() on a pidfd does:
 *    Linux 5.8).
 *  - Its start time must be the one the agent saw: otherwise the pid already belongs to another process.
 *  - The mount namespace opened through it must be the one the agent surveyed (same inode), and never
 *    the host's (PID 1's, or kthreadd's, in <proc>) or this helper's own, which is the agent's: lxcfs
 *    runs there and must keep reading the kernel's files.
 * A refusal is a result of its own: step "identity", "notEntered" says why, "error" says it in words.
 */
struct chosen {
	const char *ns; /* "<proc>/<pid>" as the agent wrote it, which results repeat */
	char proc[4096];
	long pid;
	unsigned long long start_time;
	unsigned long long mnt_ino;
};

struct failure {
	const char *step;
	int err;
	const char *not_entered; /* a refusal's reason; NULL for an ordinary failure (the process exited) */
	char error[512];
};

static int failed_step(struct failure *f, const char *step, int err)
{
	f->step = step;
	f->err = err;
	f->not_entered = NULL;
	f->error[0] = '\0';
	return -1;
}

static int refuse(struct failure *f, const char *reason, int err, const char *fmt, ...)
{
	va_list ap;
	f->step = "identity";
	f->err = err;
	f->not_entered = reason;
	va_start(ap, fmt);
	vsnprintf(f->error, sizeof(f->error), fmt, ap);
	va_end(ap);
	return -1;
}

/* "ok":false with the step and errno; a refusal adds its reason and says why in "error". */
static void field_failure(struct line *l, const struct failure *f)
{
	if (!f->not_entered) {
		field_error(l, f->step, f->err);
		return;
	}
	const char *name = strerrorname_np(f->err);
	field_bool(l, "ok", 0);
	field_str(l, "step", f->step);
	field_str(l, "errno", name ? name : "EUNKNOWN");
	field_str(l, "error", f->error);
	field_str(l, "notEntered", f->not_entered);
}

/* Parses "<proc>/<pid>", "<start time>" and "mnt:[<inode>]"; -1 when any is malformed. */
static int parse_chosen(const char *ns, const char *start_time, const char *mnt, struct chosen *c)
{
	const char *slash = strrchr(ns, '/');
	char *end;
	int consumed = 0;
	if (!slash || (size_t)(slash - ns) >= sizeof(c->proc))
		return -1;
	c->ns = ns;
	memcpy(c->proc, ns, (size_t)(slash - ns));
	c->proc[slash - ns] = '\0';
	errno = 0;
	c->pid = strtol(slash + 1, &end, 10);
	if (errno || end == slash + 1 || *end != '\0' || c->pid <= 0)
		return -1;
	c->start_time = strtoull(start_time, &end, 10);
	if (errno || end == start_time || *end != '\0')
		return -1;
	if (sscanf(mnt, "mnt:[%llu]%n", &c->mnt_ino, &consumed) != 1 || consumed == 0 || mnt[consumed] != '\0')
		return -1;
	return 0;
}

/* The inode of a namespace file, 0 when it cannot be read. */
static unsigned long long ns_inode(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

/*
 * The mount namespaces never entered, for one <proc>: PID 1's, kthreadd's (the initial one; where PID
 * 1's cannot be read, as some sandboxes forbid), and our own. Worked out once per <proc> and run, in the
 * parent, so the child of each namespace inherits it.
 */
static struct {
	char proc[4096];
	unsigned long long ino[3];
	const char *whose[3];
	int count;
	int err; /* neither PID 1's nor kthreadd's could be read: nothing is entered */
} forbidden;

static void find_forbidden(const char *proc)
{
	char path[4096 + 32], stat_line[64] = "";
	if (forbidden.proc[0] && strcmp(forbidden.proc, proc) == 0)
		return;
	snprintf(forbidden.proc, sizeof(forbidden.proc), "%s", proc);
	forbidden.count = 0;
	forbidden.err = 0;
	snprintf(path, sizeof(path), "%s/1/ns/mnt", proc);
	unsigned long long ino = ns_inode(path);
	int pid1_err = ino ? 0 : errno;
	if (ino) {
		forbidden.whose[forbidden.count] = "the host's mount namespace (PID 1's)";
		forbidden.ino[forbidden.count++] = ino;
	}
	snprintf(path, sizeof(path), "%s/2/stat", proc);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, stat_line, sizeof(stat_line) - 1);
		stat_line[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/2/ns/mnt", proc);
	if (strncmp(stat_line, "2 (kthreadd) ", 13) == 0 && (ino = ns_inode(path)) != 0) {
		forbidden.whose[forbidden.count] = "the host's mount namespace (the initial one, kthreadd's)";
		forbidden.ino[forbidden.count++] = ino;
	}
	if (forbidden.count == 0)
		forbidden.err = pid1_err ? pid1_err : EACCES;
	if ((ino = ns_inode("/proc/self/ns/mnt")) != 0) {
		forbidden.whose[forbidden.count] = "the agent's own mount namespace, where lxcfs runs";
		forbidden.ino[forbidden.count++] = ino;
	} else {
		forbidden.err = errno;
	}
}

/* Field 22 of the process's stat, read through its directory; 0 or the errno. */
static int read_start_time(int pid_dir, unsigned long long *start_time, const char **step)
{
	char buf[4096];
	*step = "open(stat)";
	int fd = openat(pid_dir, "stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	*step = "read(stat)";
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int err = n < 0 ? errno : 0;
	close(fd);
	if (n <= 0)
		return err ? err : ESRCH; /* empty: the process is being reaped */
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields are counted from the last ')'. */
	char *field = strrchr(buf, ')');
	for (int i = 0; field && i < 20; i++)
		field = strchr(field + 1, ' ');
	if (!field)
		return EINVAL;
	*start_time = strtoull(field + 1, NULL, 10);
	return 0;
}

/*
 * Opens the chosen process's mount namespace (and, where asked, its root or mountinfo) through one
 * descriptor of its /proc directory, after checking it is the process and namespace the agent chose.
 * Returns 0, or -1 with *f set. With pid_dir non-NULL the directory descriptor is handed back too.
 */
static int open_chosen(const struct chosen *c, int *ns_fd, int *root_fd, int *mountinfo_fd, int *pid_dir, struct failure *f)
{
	const char *step;
	unsigned long long start_time = 0;
	struct stat st;
	int dir = -1, ns = -1, err;
	find_forbidden(c->proc);
	if (forbidden.err)
		return refuse(f, "host-unknown", forbidden.err, "cannot read the mount namespace of %s/1 nor of kthreadd, or our own: without knowing the host's, none is entered", c->proc);
	dir = open(c->ns, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return failed_step(f, "open(pid)", errno);
	if ((err = read_start_time(dir, &start_time, &step)) != 0) {
		failed_step(f, step, err);
		goto fail;
	}
	if (start_time != c->start_time) {
		refuse(f, "other-process", ESRCH, "pid %ld is another process now (started at tick %llu; the one chosen at %llu): not entered", c->pid, start_time, c->start_time);
		goto fail;
	}
	ns = openat(dir, "ns/mnt", O_RDONLY | O_CLOEXEC);
	if (ns < 0 || fstat(ns, &st) < 0) {
		failed_step(f, "open(ns/mnt)", errno);
		goto fail;
	}
	for (int i = 0; i < forbidden.count; i++) {
		if ((unsigned long long)st.st_ino == forbidden.ino[i]) {
			refuse(f, "host-namespace", EPERM, "pid %ld is in mnt:[%llu], %s: never entered", c->pid, (unsigned long long)st.st_ino, forbidden.whose[i]);
			goto fail;
		}
	}
	if ((unsigned long long)st.st_ino != c->mnt_ino) {
		refuse(f, "other-namespace", ESTALE, "pid %ld is in mnt:[%llu] now, not in mnt:[%llu] as surveyed: not entered", c->pid, (unsigned long long)st.st_ino, c->mnt_ino);
		goto fail;
	}
	/* The process's root, not the namespace's: they differ for a chroot()ed container. */
	if (root_fd && (*root_fd = openat(dir, "root", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		failed_step(f, "open(root)", errno);
		goto fail;
	}
	if (mountinfo_fd && (*mountinfo_fd = openat(dir, "mountinfo", O_RDONLY | O_CLOEXEC)) < 0) {
		failed_step(f, "open(mountinfo)", errno);
		if (root_fd)
			close(*root_fd);
		goto fail;
	}
	*ns_fd = ns;
	if (pid_dir)
		*pid_dir = dir;
	else
		close(dir);
	return 0;
fail:
	if (ns >= 0)
		close(ns);
	close(dir);
	return -1;
}

/* ---- swap ---------------------------------------------------------------------------------------- */

struct target {
	const char *source;
	const char *path;
	int read_only;
	int replace;
	int clone_fd;
	int classic_attrs; /* mount_setattr missing: set propagation and ro with mount(2) after attaching */
};

static int emulate_old_kernel;

/* Reports one target's result; returns 1 when it failed. */
static int report(const char *ns, const struct target *t, const char *how, const char *step, int err)
{
	struct line l = {0};
	field_str(&l, "ns", ns);
	field_str(&l, "target", t->path);
	if (err) {
		field_error(&l, step, err);
	} else {
		field_bool(&l, "ok", 1);
		field_str(&l, "how", how);
	}
	emit(&l);
	return err != 0;
}

/* Clone the live source in our own namespace, private, read-only when the container had it so. */
static int prepare_clone(const char *ns, struct target *t)
{
	t->clone_fd = sys_open_tree(AT_FDCWD, t->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (t->clone_fd < 0) {
		report(ns, t, NULL, "open_tree", errno);
		return -1;
	}
	struct helper_mount_attr attr = {
		.attr_set = t->read_only ? MOUNT_ATTR_RDONLY : 0,
		.propagation = MS_PRIVATE,
	};
	if (emulate_old_kernel || sys_mount_setattr(t->clone_fd, "", AT_EMPTY_PATH, &attr) < 0) {
		if (!emulate_old_kernel && errno != ENOSYS) {
			report(ns, t, NULL, "mount_setattr", errno);
			close(t->clone_fd);
			t->clone_fd = -1;
			return -1;
		}
		t->classic_attrs = 1;
	}
	return 0;
}

/* Kernels before 5.12: the same attributes with the classic API, on the attached mount. */
static int apply_classic_attrs(const struct target *t, const char **step)
{
	*step = "mount(MS_PRIVATE)";
	if (mount(NULL, t->path, NULL, MS_PRIVATE, NULL) < 0)
		return errno;
	/* A remount replaces the per-mount flags: keep the nosuid,nodev every FUSE mount has. */
	*step = "mount(MS_RDONLY)";
	if (t->read_only && mount(NULL, t->path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		return errno;
	return 0;
}

/* Runs inside the container's mount namespace and root. Returns 1 when it failed. */
static int attach_clone(const char *ns, struct target *t)
{
	const char *how = "attach";
	const char *step = "move_mount";
	int err = 0;

	if (t->replace && !emulate_old_kernel) {
		/* Atomic swap: the clone goes beneath the dead mount, then the dead mount is detached. */
		if (sys_move_mount(t->clone_fd, "", AT_FDCWD, t->path, MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_BENEATH) == 0) {
			how = "beneath";
			if (umount2(t->path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
				err = errno;
				step = "umount2";
			}
			goto done;
		}
		if (errno != EINVAL) {
			err = errno;
			goto done;
		}
	}
	if (t->replace) {
		/* No MOVE_MOUNT_BENEATH: move_mount onto a dead mount fails with ENOENT, so detach it first. */
		how = "detach-attach";
		if (umount2(t->path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
			err = errno;
			step = "umount2";
			goto done;
		}
	}
	if (sys_move_mount(t->clone_fd, "", AT_FDCWD, t->path, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		err = errno;
		goto done;
	}
	if (t->classic_attrs)
		err = apply_classic_attrs(t, &step);
done:
	return report(ns, t, how, step, err);
}

/* Reports a failure for every target not reported yet (those without a clone failed on their own). */
static int report_all(const char *ns, struct target *targets, int count, const struct failure *f, int cloned_only)
{
	int failed = 0;
	for (int i = 0; i < count; i++) {
		if (cloned_only && targets[i].clone_fd < 0)
			continue;
		struct line l = {0};
		field_str(&l, "ns", ns);
		field_str(&l, "target", targets[i].path);
		field_failure(&l, f);
		emit(&l);
		failed++;
	}
	return failed;
}

/* The namespace and root of the chosen process, opened and checked before anything is touched. */
struct entry {
	int ns_fd;
	int root_fd;
};

/* Enters the namespace and root opened by open_chosen(); returns 0, or -1 with *f set. */
static int enter_container(const struct entry *e, struct failure *f)
{
	if (setns(e->ns_fd, CLONE_NEWNS) < 0)
		return failed_step(f, "setns", errno);
	if (fchdir(e->root_fd) < 0 || chroot(".") < 0 || chdir("/") < 0)
		return failed_step(f, "chroot", errno);
	return 0;
}

/*
 * One namespace, in a child process: setns() and chroot() cannot be undone for the next namespace.
 * The process is checked first, and every clone is prepared before the container is touched. Returns
 * the number of failed targets.
 */
static int swap_namespace(const struct chosen *c, struct target *targets, int count)
{
	struct entry e;
	struct failure f;
	if (open_chosen(c, &e.ns_fd, &e.root_fd, NULL, NULL, &f) < 0)
		return report_all(c->ns, targets, count, &f, 0);
	int failed = 0;
	for (int i = 0; i < count; i++)
		failed += prepare_clone(c->ns, &targets[i]) < 0;
	if (failed == count)
		return failed;
	if (enter_container(&e, &f) < 0)
		return failed + report_all(c->ns, targets, count, &f, 1);
	for (int i = 0; i < count; i++)
		if (targets[i].clone_fd >= 0)
			failed += attach_clone(c->ns, &targets[i]);
	return failed;
}

/*
 * Reads one byte of each target inside the container, as its processes would. O_NONBLOCK: a FIFO
 * put there by the container must not hold the helper (a hung lxcfs does; the caller's timeout ends it).
 */
static int peek_namespace(const struct chosen *c, struct target *targets, int count)
{
	const char *ns = c->ns;
	struct entry e;
	struct failure f;
	if (open_chosen(c, &e.ns_fd, &e.root_fd, NULL, NULL, &f) < 0 || enter_container(&e, &f) < 0)
		return report_all(ns, targets, count, &f, 0);
	int failed = 0;
	for (int i = 0; i < count; i++) {
		char byte;
		int fd = open(targets[i].path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			failed += report(ns, &targets[i], NULL, "open", errno);
			continue;
		}
		ssize_t n = read(fd, &byte, 1);
		int err = n < 0 ? errno : n == 0 ? ENODATA : 0;
		close(fd);
		failed += report(ns, &targets[i], "read", "read", err);
	}
	return failed;
}

typedef int (*namespace_work)(const struct chosen *c, struct target *targets, int count);

static int run_in_child(namespace_work work, const struct chosen *c, struct target *targets, int count)
{
	/* In the parent, so every child inherits it: once per run, not per namespace. */
	find_forbidden(c->proc);
	pid_t pid = fork();
	if (pid < 0) {
		int err = errno;
		for (int i = 0; i < count; i++)
			report(c->ns, &targets[i], NULL, "fork", err);
		return 1;
	}
	if (pid == 0)
		_exit(work(c, targets, count) ? 1 : 0);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

/* ---- watch --------------------------------------------------------------------------------------- */

/*
 * Why epoll on /proc/<pid>/mountinfo: the kernel flags an open mountinfo with EPOLLPRI|EPOLLERR whenever
 * its mount namespace's table changed since the file was last polled (fs/proc_namespace.c, mounts_poll),
 * on every kernel the agent supports, and an idle node costs no read at all. The alternatives reach
 * fewer nodes or cost more: fanotify mount events (FAN_MNT_ATTACH/DETACH with FAN_MARK_MNTNS) need Linux
 * 6.15, fanotify groups are limited per user (fs.fanotify.max_user_groups, 128 by default) and a detach
 * event names a mount that is already gone; listmount/statmount need 6.8 (another namespace's only from
 * 6.11, by mnt_ns_id) and still cost syscalls per namespace on every sweep.
 *
 * An open mountinfo holds its mount namespace, and so every mount in it (mounts_open_common takes a
 * reference): a finished container's volumes could not be detached while we hold it. So each watch
 * also holds a pidfd of the process (Linux 5.3), and both are closed as soon as the process exits.
 */

struct watch {
	char key[256]; /* "" for a free slot */
	long pid;
	int mountinfo_fd;
	int pid_fd;
};

static struct watch *watches;
static size_t watch_slots;

/* epoll data: a watch's slot and which of its descriptors; stdin has its own value. */
#define WATCH_STDIN UINT64_MAX
#define WATCH_DATA(slot, is_pidfd) (((uint64_t)(slot) << 1) | (is_pidfd))

static void watch_line(struct line *l, const char *event, const struct watch *w)
{
	field_str(l, "event", event);
	field_str(l, "key", w->key);
	field_long(l, "pid", w->pid);
}

static void unwatch(struct watch *w)
{
	close(w->mountinfo_fd);
	close(w->pid_fd);
	w->key[0] = '\0';
}

static struct watch *find_watch(const char *key)
{
	for (size_t i = 0; i < watch_slots; i++)
		if (strcmp(watches[i].key, key) == 0)
			return &watches[i];
	return NULL;
}

/* A free slot, growing the table when every slot is taken; NULL without memory. */
static struct watch *free_slot(void)
{
	struct watch *w = find_watch("");
	if (w)
		return w;
	size_t slots = watch_slots ? watch_slots * 2 : 64;
	struct watch *grown = realloc(watches, slots * sizeof(*grown));
	if (!grown)
		return NULL;
	memset(grown + watch_slots, 0, (slots - watch_slots) * sizeof(*grown));
	watches = grown;
	w = &watches[watch_slots];
	watch_slots = slots;
	return w;
}

static void add_failed(const char *key, long pid, const struct failure *f)
{
	struct line l = {0};
	field_str(&l, "event", "added");
	field_str(&l, "key", key);
	field_long(&l, "pid", pid);
	field_failure(&l, f);
	emit(&l);
}

/*
 * The chosen process and its namespace are checked as for swap (open_chosen), and its mountinfo is
 * opened through the same /proc descriptor. The pidfd that tells when it exits comes next: the process
 * is then checked to be still alive through that descriptor, so the pidfd is of the same process (the
 * agent runs with hostPID: <proc> shows the pids this helper's pidfd_open takes).
 */
static void add_watch(int epoll_fd, const char *proc, const char *key, long pid, const char *start_time)
{
	char ns[4096 + 32];
	struct chosen c;
	struct failure f;
	int ns_fd, mountinfo_fd, pid_dir;
	struct watch *old = find_watch(key);
	if (old)
		unwatch(old);
	snprintf(ns, sizeof(ns), "%s/%ld", proc, pid);
	if (parse_chosen(ns, start_time, key, &c) < 0) {
		failed_step(&f, "parse", EINVAL);
		add_failed(key, pid, &f);
		return;
	}
	if (open_chosen(&c, &ns_fd, NULL, &mountinfo_fd, &pid_dir, &f) < 0) {
		add_failed(key, pid, &f);
		return;
	}
	close(ns_fd);
	int pid_fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	int err = pid_fd < 0 ? errno : 0;
	const char *step = "pidfd_open";
	if (!err && syscall(SYS_pidfd_send_signal, pid_dir, 0, NULL, 0) < 0) {
		err = errno; /* exited after its checks: the pidfd may be of another process */
		step = "pidfd_send_signal";
		close(pid_fd);
	}
	close(pid_dir);
	if (err) {
		close(mountinfo_fd);
		add_failed(key, pid, (failed_step(&f, step, err), &f));
		return;
	}
	struct watch *w = free_slot();
	step = "realloc";
	err = ENOMEM;
	if (w) {
		size_t slot = (size_t)(w - watches);
		struct epoll_event on_change = {.events = EPOLLPRI, .data.u64 = WATCH_DATA(slot, 0)};
		struct epoll_event on_exit = {.events = EPOLLIN, .data.u64 = WATCH_DATA(slot, 1)};
		step = "epoll_ctl";
		if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, mountinfo_fd, &on_change) == 0 && epoll_ctl(epoll_fd, EPOLL_CTL_ADD, pid_fd, &on_exit) == 0)
			err = 0;
		else
			err = errno;
	}
	if (err) {
		close(mountinfo_fd); /* closing also takes a descriptor out of the epoll set */
		close(pid_fd);
		add_failed(key, pid, (failed_step(&f, step, err), &f));
		return;
	}
	snprintf(w->key, sizeof(w->key), "%s", key);
	w->pid = pid;
	w->mountinfo_fd = mountinfo_fd;
	w->pid_fd = pid_fd;
	struct line l = {0};
	watch_line(&l, "added", w);
	field_bool(&l, "ok", 1);
	field_str(&l, "mntNs", key); /* checked by open_chosen */
	emit(&l);
}

/* One command line: "add <mnt:[inode]> <pid> <start time>" or "remove <mnt:[inode]>". */
static void watch_command(int epoll_fd, const char *proc, char *line)
{
	char *save = NULL;
	char *cmd = strtok_r(line, " ", &save);
	char *key = strtok_r(NULL, " ", &save);
	char *pid = strtok_r(NULL, " ", &save);
	char *start_time = strtok_r(NULL, " ", &save);
	char *end = NULL;
	long pid_number = pid ? strtol(pid, &end, 10) : 0;
	if (cmd && key && strcmp(cmd, "remove") == 0 && !pid) {
		struct watch *w = find_watch(key);
		if (w)
			unwatch(w);
	} else if (cmd && key && strcmp(cmd, "add") == 0 && pid && *end == '\0' && pid_number > 0 && start_time && strlen(key) < sizeof(watches->key)) {
		add_watch(epoll_fd, proc, key, pid_number, start_time);
	} else {
		struct line l = {0};
		field_str(&l, "event", "refused");
		field_str(&l, "line", line);
		field_error(&l, "parse", EINVAL);
		emit(&l);
	}
}

/* Reads what stdin has and runs every complete line; returns 0 once stdin has ended. */
static int read_commands(int epoll_fd, const char *proc)
{
	static char buf[65536];
	static size_t len;
	ssize_t n = read(STDIN_FILENO, buf + len, sizeof(buf) - 1 - len);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return 0;
	len += (size_t)n;
	buf[len] = '\0';
	char *start = buf;
	for (char *nl; (nl = strchr(start, '\n')) != NULL; start = nl + 1) {
		*nl = '\0';
		watch_command(epoll_fd, proc, start);
	}
	len -= (size_t)(start - buf);
	memmove(buf, start, len);
	if (len == sizeof(buf) - 1)
		len = 0; /* no command is this long: drop it */
	return 1;
}

static int cmd_watch(const char *proc)
{
	/* Two descriptors per container: take the hard limit (an add past it reports EMFILE). */
	struct rlimit files;
	if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
		files.rlim_cur = files.rlim_max;
		setrlimit(RLIMIT_NOFILE, &files);
	}
	int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event on_input = {.events = EPOLLIN, .data.u64 = WATCH_STDIN};
	if (epoll_fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, STDIN_FILENO, &on_input) < 0)
		return emit_result("epoll", errno);
	for (;;) {
		struct epoll_event events[64];
		int n = epoll_wait(epoll_fd, events, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return emit_result("epoll_wait", errno);
		int input = 0;
		for (int i = 0; i < n; i++) {
			if (events[i].data.u64 == WATCH_STDIN) {
				input = 1;
				continue;
			}
			struct watch *w = &watches[events[i].data.u64 >> 1];
			if (w->key[0] == '\0')
				continue; /* dropped by an earlier event of this batch */
			int exited = events[i].data.u64 & 1;
			struct line l = {0};
			watch_line(&l, exited ? "gone" : "changed", w);
			/* Closed before it is said: "gone" means the namespace is no longer held. */
			if (exited)
				unwatch(w);
			emit(&l);
		}
		/* Commands last: an add may reuse a slot that this batch's events still name. */
		if (input && !read_commands(epoll_fd, proc))
			return 0;
	}
}

/* ---- cgroups ------------------------------------------------------------------------------------- */

/*
 * Why inotify on the cgroup hierarchy: every container runtime makes a cgroup directory per container
 * (mkdir, which the kernel reports as IN_CREATE on the parent) before the container's processes exist,
 * on cgroup v1 and v2 alike, so a new container is noticed without scanning /proc. inotify is not
 * recursive: each directory is watched, and a new one is watched (and walked, for what was made in it
 * meanwhile) as soon as it is reported. Only IN_CREATE is asked for: removals, and the cgroup files that
 * change all the time (memory.events, cgroup.events), cost no wake-up. A removed directory's watch ends
 * by itself (IN_IGNORED).
 */

struct dir_watch {
	int wd;
	char *path;
};

/* Sorted by wd: the kernel hands out increasing numbers, so an insert is nearly always an append. */
static struct dir_watch *dir_watches;
static size_t dir_count, dir_slots;
static int dir_failed_errno;
static const char *dir_failed_step;

/* Index of wd, or of where it would go. */
static size_t dir_find(int wd)
{
	size_t lo = 0, hi = dir_count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (dir_watches[mid].wd < wd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void dir_forget(int wd)
{
	size_t i = dir_find(wd);
	if (i == dir_count || dir_watches[i].wd != wd)
		return;
	free(dir_watches[i].path);
	memmove(&dir_watches[i], &dir_watches[i + 1], (dir_count - i - 1) * sizeof(*dir_watches));
	dir_count--;
}

static void dir_failed(const char *step, int err)
{
	if (!dir_failed_errno) {
		dir_failed_step = step;
		dir_failed_errno = err;
	}
}

/*
 * Watches `path` and every directory below it; failures are kept in dir_failed_*. With `report`, each
 * directory not watched before is printed as created: those made in a new one before its watch began
 * had no event of their own.
 */
static void watch_tree(int inotify_fd, const char *path, int report)
{
	int wd = inotify_add_watch(inotify_fd, path, IN_CREATE | IN_ONLYDIR | IN_DONT_FOLLOW);
	if (wd < 0) {
		/* Gone meanwhile: nothing to watch. */
		if (errno != ENOENT)
			dir_failed("inotify_add_watch", errno);
		return;
	}
	size_t i = dir_find(wd);
	if (i == dir_count || dir_watches[i].wd != wd) {
		if (dir_count == dir_slots) {
			size_t slots = dir_slots ? dir_slots * 2 : 256;
			struct dir_watch *grown = realloc(dir_watches, slots * sizeof(*grown));
			if (!grown) {
				inotify_rm_watch(inotify_fd, wd);
				dir_failed("realloc", ENOMEM);
				return;
			}
			dir_watches = grown;
			dir_slots = slots;
		}
		char *copy = strdup(path);
		if (!copy) {
			inotify_rm_watch(inotify_fd, wd);
			dir_failed("strdup", ENOMEM);
			return;
		}
		memmove(&dir_watches[i + 1], &dir_watches[i], (dir_count - i) * sizeof(*dir_watches));
		dir_watches[i] = (struct dir_watch){.wd = wd, .path = copy};
		dir_count++;
		if (report) {
			struct line l = {0};
			field_str(&l, "event", "created");
			field_str(&l, "path", path);
			emit(&l);
		}
	}
	DIR *dir = opendir(path);
	if (!dir) {
		if (errno != ENOENT)
			dir_failed("opendir", errno);
		return;
	}
	for (struct dirent *e; (e = readdir(dir)) != NULL;) {
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char child[4096];
		if (snprintf(child, sizeof(child), "%s/%s", path, e->d_name) >= (int)sizeof(child))
			continue; /* no cgroup path is this long */
		watch_tree(inotify_fd, child, report);
	}
	closedir(dir);
}

/* Reports a failure kept by watch_tree() once; returns whether there was one. */
static int report_incomplete(const char *event)
{
	if (!dir_failed_errno)
		return 0;
	struct line l = {0};
	field_str(&l, "event", event);
	field_long(&l, "watched", (long)dir_count);
	field_error(&l, dir_failed_step, dir_failed_errno);
	emit(&l);
	dir_failed_errno = 0;
	return 1;
}

static void cgroup_events(int inotify_fd, const char *root)
{
	/* Aligned for struct inotify_event, as inotify(7) shows. */
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n = read(inotify_fd, buf, sizeof(buf));
	for (char *p = buf; n > 0 && p < buf + n;) {
		const struct inotify_event *e = (const struct inotify_event *)p;
		p += sizeof(*e) + e->len;
		struct line l = {0};
		if (e->mask & IN_Q_OVERFLOW) {
			field_str(&l, "event", "overflow");
			emit(&l);
			watch_tree(inotify_fd, root, 1);
		} else if (e->mask & IN_IGNORED) {
			dir_forget(e->wd);
		} else if ((e->mask & IN_CREATE) && (e->mask & IN_ISDIR) && e->len > 0) {
			size_t i = dir_find(e->wd);
			if (i == dir_count || dir_watches[i].wd != e->wd)
				continue;
			char path[4096];
			if (snprintf(path, sizeof(path), "%s/%s", dir_watches[i].path, e->name) >= (int)sizeof(path))
				continue;
			watch_tree(inotify_fd, path, 1);
		}
	}
	report_incomplete("incomplete");
}

static int cmd_cgroups(const char *root)
{
	int inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (inotify_fd < 0 || epoll_fd < 0)
		return emit_result("inotify_init1", errno);
	struct epoll_event on_input = {.events = EPOLLIN, .data.u64 = 0};
	struct epoll_event on_event = {.events = EPOLLIN, .data.u64 = 1};
	if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, STDIN_FILENO, &on_input) < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, inotify_fd, &on_event) < 0)
		return emit_result("epoll_ctl", errno);
	watch_tree(inotify_fd, root, 0);
	if (dir_count == 0 && !dir_failed_errno)
		dir_failed("inotify_add_watch", ENOENT);
	if (!report_incomplete("ready")) {
		struct line l = {0};
		field_str(&l, "event", "ready");
		field_bool(&l, "ok", 1);
		field_long(&l, "watched", (long)dir_count);
		emit(&l);
	}
	for (;;) {
		struct epoll_event events[2];
		int n = epoll_wait(epoll_fd, events, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return emit_result("epoll_wait", errno);
		for (int i = 0; i < n; i++) {
			if (events[i].data.u64 == 1) {
				cgroup_events(inotify_fd, root);
				continue;
			}
			char discard[4096];
			ssize_t got = read(STDIN_FILENO, discard, sizeof(discard));
			if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
				return 0;
		}
	}
}

static int usage(void)
{
	fprintf(stderr,
		"usage: lxcfs-remount check | read <file> | probe <file> | tmpfs <dir> <options> | bind <source> <target> |\n"
		"       detach <path> | swap --ns <proc>/<pid> <start time> <mnt:[inode]> <source> <target> ro|rw replace|attach ... [--ns ...] |\n"
		"       peek --ns <proc>/<pid> <start time> <mnt:[inode]> <target>... [--ns ...] | watch <proc> | cgroups <dir>\n");
	return 2;
}

/*
 * Runs `work` per namespace on "--ns <proc>/<pid> <start time> <mnt:[inode]> <target args>... [--ns ...]",
 * where each target takes `per_target` arguments: 4 for swap (source target ro|rw replace|attach), 1 for
 * peek (target).
 */
static int for_each_namespace(int argc, char **argv, int per_target, namespace_work work)
{
	struct target *targets = calloc((size_t)argc / (size_t)per_target + 1, sizeof(*targets));
	int failed = 0;
	if (!targets)
		return emit_result("calloc", ENOMEM);
	for (int i = 0; i < argc;) {
		struct chosen c;
		if (strcmp(argv[i], "--ns") != 0 || i + 3 >= argc || parse_chosen(argv[i + 1], argv[i + 2], argv[i + 3], &c) < 0) {
			free(targets);
			return usage();
		}
		int count = 0;
		for (i += 4; i < argc && strcmp(argv[i], "--ns") != 0; i += per_target) {
			if (i + per_target - 1 >= argc) {
				free(targets);
				return usage();
			}
			targets[count++] = per_target == 1
				? (struct target){.path = argv[i], .clone_fd = -1}
				: (struct target){
					.source = argv[i],
					.path = argv[i + 1],
					.read_only = strcmp(argv[i + 2], "ro") == 0,
					.replace = strcmp(argv[i + 3], "replace") == 0,
					.clone_fd = -1,
				};
		}
		failed |= run_in_child(work, &c, targets, count);
	}
	free(targets);
	return failed;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *cmd = argv[1];
	if (strcmp(cmd, "check") == 0 && argc == 2)
		return cmd_check();
	if (strcmp(cmd, "read") == 0 && argc == 3)
		return cmd_read(argv[2]);
	if (strcmp(cmd, "probe") == 0 && argc == 3)
		return cmd_probe(argv[2]);
	if (strcmp(cmd, "tmpfs") == 0 && argc == 4)
		return cmd_tmpfs(argv[2], argv[3]);
	if (strcmp(cmd, "bind") == 0 && argc == 4)
		return cmd_bind(argv[2], argv[3]);
	if (strcmp(cmd, "detach") == 0 && argc == 3)
		return cmd_detach(argv[2]);
	if (strcmp(cmd, "swap") == 0) {
		emulate_old_kernel = getenv("LXCFS_REMOUNT_EMULATE_OLD_KERNEL") != NULL;
		return for_each_namespace(argc - 2, argv + 2, 4, swap_namespace);
	}
	if (strcmp(cmd, "watch") == 0 && argc == 3)
		return cmd_watch(argv[2]);
	if (strcmp(cmd, "cgroups") == 0 && argc == 3)
		return cmd_cgroups(argv[2]);
	if (strcmp(cmd, "peek") == 0)
		return for_each_namespace(argc - 2, argv + 2, 1, peek_namespace);
	return usage();
}
