// libfuse 3's low-level API for `tydfs mount` (issue 18). The version must be defined before
// the include: 35 is the API of libfuse 3.5 and later (Debian 12 ships 3.14).
#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>
