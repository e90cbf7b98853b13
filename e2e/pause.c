/* The e2e node's sandbox ("pause") container: holds the pod's namespaces, reaps orphans, and
 * exits on SIGINT/SIGTERM. Built statically by e2e/node (cc -static) and packed into an OCI
 * image by e2e/oci-image.py, because no registry is reachable to pull registry.k8s.io/pause. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }

int main(void) {
  signal(SIGINT, quit);
  signal(SIGTERM, quit);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
