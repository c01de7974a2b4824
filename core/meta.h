/* core/meta.h: placeholder, being written. */
#pragma once
