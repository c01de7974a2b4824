/* core/topics.h: placeholder, being written. */
#pragma once
