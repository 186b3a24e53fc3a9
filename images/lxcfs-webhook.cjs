#!/nodejs/bin/node
// `lxcfs-webhook` on PATH in the webhook image (/usr/local/bin/lxcfs-webhook), so that
// `kubectl exec … -- lxcfs-webhook <command>` works in a distroless image that has no shell and no
// /usr/bin/env: the kernel runs this file with the image's node, and it loads the CLI.
import('/app/dist/src/cli/main.js');
