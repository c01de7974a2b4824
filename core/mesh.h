/* core/mesh.h: placeholder, being written. */
#pragma once
