/* core/mesh.c: placeholder, being written. */
#include "core/mesh.h"
int placeholder_mesh;
