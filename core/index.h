/* core/index.h: placeholder, being written. */
#pragma once
