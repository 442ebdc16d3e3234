-- AlterTable
ALTER TABLE "sessions" ADD COLUMN     "revoked_at" TIMESTAMP(3);
