/* core/frame.h: placeholder, being written. */
#pragma once
