^XA^CI28^PW384^LL76^CF0,24^FO0,8^FDGrüße aus Köln – 12,50 €^FS^FO0,38^FD“Zoë” ½ Łódź ß^FS^XZ
